// Checkpoints and resuming. A checkpoint holds the trainer state's tensors and, in its metadata, the run state:
// everything else a resumed run needs. Resuming merges the options given now over the stored ones, so that the
// run continues bit for bit where the interrupted one stopped.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GptConfig } from '../engine/model';
import type { AdamWSettings, Schedule } from '../engine/optimizer';
import type { Trainable } from '../engine/trainingGraph';
import type { CurvePoint, DataSnapshot } from '../modelFolder/modelCard';
import { type Tensors, decodeSafetensors, encodeSafetensors } from '../modelFolder/safetensors';
import { writeFileAtomic } from '../util/atomicFile';
import type { TrainOptions } from './trainOptions';
import { type TrainerState, stateToTensors } from './trainStep';

/** Everything a resumed run needs besides the tensors; stored in the checkpoint's metadata. */
export interface RunState {
  options: TrainOptions;
  config: GptConfig;
  adamw: AdamWSettings;
  schedule: Schedule;
  step: number;
  elapsedSeconds: number;
  curve: CurvePoint[];
  data: DataSnapshot;
  parent?: string;
}

/** A checkpoint read back: the run state, and the trained parameters' state as tensors in Hugging Face names. */
export interface Checkpoint {
  run: RunState;
  tensors: Tensors;
}

export const checkpointFile = (out: string) => path.join(out, 'checkpoint', 'state.safetensors');

/**
 * The options a run goes by and, when it resumes, the checkpoint it continues from. Options given now override
 * the stored ones (architecture, tokenizer, optimizer settings and schedule stay the stored run's); a new
 * `steps` also moves the end of the stored schedule.
 */
export function resumeRun(requested: TrainOptions): { options: TrainOptions; checkpoint?: Checkpoint } {
  if (!requested.resume) return { options: requested };
  const file = checkpointFile(requested.out);
  if (!fs.existsSync(file)) throw new Error(`nothing to resume: ${file} does not exist`);
  const saved = decodeSafetensors(fs.readFileSync(file));
  const run: RunState = JSON.parse(saved.metadata.run);
  if (requested.steps) run.schedule.totalSteps = requested.steps;
  const options: TrainOptions = { ...run.options, ...definedOnly(requested), resume: true };
  return { options, checkpoint: { run, tensors: saved.tensors } };
}

/**
 * Replaces the checkpoint atomically, so that a run killed at any moment leaves the previous one intact. It holds
 * the trained parameters and their AdamW moments (a LoRA run's adapter, not the frozen base); seeds, step and
 * schedule are in the run state.
 */
export function writeCheckpoint(out: string, trained: Trainable, state: TrainerState, run: RunState): void {
  const tensors = stateToTensors(trained, state);
  writeFileAtomic(checkpointFile(out), encodeSafetensors(tensors, { run: JSON.stringify(run) }));
}

function definedOnly<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}
