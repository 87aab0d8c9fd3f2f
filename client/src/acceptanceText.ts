// How the panel shows the local acceptance record of one model's inline suggestions (from the server's
// modelwright/acceptanceRates notification): "accepted 12 of 40 (30%), 5 in part". Pure, so tested without VS Code.
import type { AcceptanceFigures } from '../../server/src/protocol';

export function acceptanceText(figures: AcceptanceFigures | undefined): string {
  if (!figures || figures.shown === 0) return 'no suggestions shown yet';
  const percent = Math.round(figures.acceptanceRate * 100);
  const partly = figures.partiallyAccepted > 0 ? `, ${figures.partiallyAccepted} in part` : '';
  return `accepted ${figures.accepted} of ${figures.shown} (${percent}%)${partly}`;
}
