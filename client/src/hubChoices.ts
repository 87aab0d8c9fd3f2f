// What Download Model offers and asks: the recommended models (with their approximate sizes, and whether one is
// downloaded already), a typed repository id (owner/name, owner/name@revision or a hub URL), the precisions, and
// the redaction that keeps the Hugging Face token out of the logs. Pure, tested without VS Code.
import {
  type ModelSummary,
  type PullDtype,
  type RecommendedModel,
  hubRepoRule,
  isHubRepoId,
  pullDtypes,
} from '../../server/src/protocol';
import { formatBytes } from './format';

export interface RepositoryChoice {
  label: string;
  description: string;
  detail?: string;
  /** The recommended model, or undefined for "Enter a repository id…". */
  model?: RecommendedModel;
}

const purposeLabels: Record<RecommendedModel['purpose'], string> = {
  completion: 'completions',
  explanation: 'explanations',
};

/** An approximate size: "~1.0 GB", "~270 MB". */
export function approximateSize(bytes: number): string {
  return `~${formatBytes(bytes)}`;
}

/** The quick pick of Download Model: the recommended models, then "Enter a repository id…". */
export function repositoryChoices(
  recommended: readonly RecommendedModel[],
  downloaded: readonly ModelSummary[],
): RepositoryChoice[] {
  const have = new Set(downloaded.map((m) => m.origin?.repo).filter((repo): repo is string => !!repo));
  return [
    ...recommended.map((model) => ({
      label: model.repo,
      description: [
        approximateSize(model.approximateBytes),
        `for ${purposeLabels[model.purpose]}`,
        ...(have.has(model.repo) ? ['downloaded'] : []),
      ].join(' · '),
      detail: model.note,
      model,
    })),
    {
      label: '$(edit) Enter a repository id…',
      description: 'any Hugging Face model with a transformers.js ONNX export or safetensors weights',
    },
  ];
}

/**
 * A typed repository: `owner/name`, `owner/name@revision`, or a hub URL (`https://huggingface.co/owner/name`,
 * optionally `/tree/<revision>`). An `error` saying what is wrong otherwise.
 */
export function parseRepository(input: string): { repo: string; revision?: string } | { error: string } {
  let text = input.trim();
  if (!text) return { error: `A hub model id: ${hubRepoRule.description}` };
  let revision: string | undefined;
  const url = /^https?:\/\/[^/]+\/([^/?#]+\/[^/?#]+)(?:\/(?:tree|blob|resolve)\/([^/?#]+))?[^?#]*\/?(?:[?#].*)?$/.exec(
    text,
  );
  if (url) {
    text = url[1];
    revision = url[2] ? decodeURIComponent(url[2]) : undefined;
  } else {
    const at = text.lastIndexOf('@');
    if (at > 0) {
      revision = text.slice(at + 1).trim();
      text = text.slice(0, at).trim();
      if (!revision) return { error: 'Give a revision after "@" (a branch, tag or commit), or leave the "@" out' };
    }
  }
  if (revision !== undefined && /\s/.test(revision)) return { error: 'A revision has no spaces' };
  if (!isHubRepoId(text)) return { error: `Not a hub model id: expected ${hubRepoRule.description}` };
  return revision && revision !== 'main' ? { repo: text, revision } : { repo: text };
}

export interface DtypeChoice {
  label: PullDtype;
  description: string;
  detail: string;
}

const dtypeDetails: Record<PullDtype, string> = {
  fp32: 'Full precision: the best quality and the largest download.',
  q8: '8-bit weights: about a quarter of fp32, nearly as good, faster on a CPU.',
  q4: '4-bit weights: the smallest; for explanations (chat models) only: completions run fp32 or q8.',
};

/** The precisions, the suggested one first; a repository without that ONNX export gives safetensors to convert. */
export function dtypeChoices(suggested: PullDtype = 'fp32'): DtypeChoice[] {
  return [suggested, ...pullDtypes.filter((d) => d !== suggested)].map((dtype) => ({
    label: dtype,
    description: dtype === suggested ? 'suggested' : '',
    detail: dtypeDetails[dtype],
  }));
}

/** The text with every secret (of at least 8 characters) replaced, for anything written to a log. */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  let result = text;
  for (const secret of secrets) if (secret.length >= 8) result = result.split(secret).join('«redacted»');
  return result;
}
