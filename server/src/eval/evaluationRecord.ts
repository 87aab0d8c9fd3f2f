// Where evaluations are recorded: in the model card of a model folder we may write to, and for a shipped or
// read-only model in a file per model under the user's data folder, so that evaluating never changes a folder
// the user did not train. A writable folder without a card (a hub download) records nothing.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Evaluation, readModelCard, updateModelCard } from '../modelFolder/modelCard';
import { writeFileAtomic } from '../util/atomicFile';

/** The user's data folder: MODELWRIGHT_DATA_DIR, else $XDG_DATA_HOME/modelwright, else ~/.local/share/modelwright. */
export function userDataDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MODELWRIGHT_DATA_DIR) return path.resolve(env.MODELWRIGHT_DATA_DIR);
  const xdg = env.XDG_DATA_HOME?.trim();
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'modelwright');
  return path.join(os.homedir(), '.local', 'share', 'modelwright');
}

/** The file that holds the evaluations of a model folder that is not written to. */
export function evaluationLogFile(modelDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.resolve(modelDir);
  const id = createHash('sha256').update(dir).digest('hex').slice(0, 10);
  return path.join(userDataDirectory(env), 'evaluations', `${path.basename(dir)}-${id}.json`);
}

/** The evaluations recorded for a model folder outside it (oldest first). */
export function readEvaluationLog(modelDir: string, env: NodeJS.ProcessEnv = process.env): Evaluation[] {
  try {
    return JSON.parse(fs.readFileSync(evaluationLogFile(modelDir, env), 'utf8')).evaluations ?? [];
  } catch {
    return [];
  }
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Appends an evaluation where it belongs and returns the file it went to, if any. */
export function recordEvaluation(
  modelDir: string,
  evaluation: Evaluation,
  options: { readOnly?: boolean; env?: NodeJS.ProcessEnv } = {},
): string | undefined {
  const hasCard = (() => {
    try {
      return readModelCard(modelDir) !== undefined;
    } catch {
      return false;
    }
  })();
  const inPlace = !options.readOnly && writable(modelDir);
  if (inPlace && !hasCard) return undefined;
  if (inPlace) {
    updateModelCard(modelDir, (card) => card.evaluations.push(evaluation));
    return path.join(modelDir, 'modelwright.json');
  }
  const file = evaluationLogFile(modelDir, options.env);
  const evaluations = [...readEvaluationLog(modelDir, options.env), evaluation];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify({ model: path.resolve(modelDir), evaluations }, null, 2)}\n`);
  return file;
}
