// The `.pull.json` manifest of a pulled model folder: what was pulled (repo, revision, commit, dtype) and every
// file with its size and sha256. It is written last and atomically, so a folder without one is never complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomicFile';
import type { Dtype } from './selectFiles';

export const MANIFEST_FILE = '.pull.json';

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface PullManifest {
  format: 1;
  repo: string;
  /** The revision asked for (a branch, a tag or a commit). */
  revision: string;
  /** The commit the revision resolved to. */
  commit: string;
  dtype: Dtype;
  /** 'onnx' when the ONNX export for the dtype was pulled, 'safetensors' when weights need converting. */
  weights: 'onnx' | 'safetensors';
  endpoint: string;
  files: ManifestFile[];
  /** ISO 8601 time the pull completed. */
  pulledAt: string;
}

export function manifestPath(dir: string): string {
  return path.join(dir, MANIFEST_FILE);
}

/** The folder's manifest, or undefined if it has none or it cannot be read. */
export function readManifest(dir: string): PullManifest | undefined {
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestPath(dir), 'utf8')) as PullManifest;
    if (manifest?.format !== 1 || typeof manifest.repo !== 'string' || !Array.isArray(manifest.files)) return undefined;
    return manifest;
  } catch {
    return undefined;
  }
}

export function writeManifest(dir: string, manifest: PullManifest): void {
  writeFileAtomic(manifestPath(dir), JSON.stringify(manifest, null, 2) + '\n');
}

export function removeManifest(dir: string): void {
  fs.rmSync(manifestPath(dir), { force: true });
}

/** The files of the manifest that are missing or have another size (a cheap check, no hashing). */
export function missingFiles(dir: string, manifest: PullManifest): string[] {
  return manifest.files
    .filter((file) => {
      try {
        return fs.statSync(path.join(dir, ...file.path.split('/'))).size !== file.size;
      } catch {
        return true;
      }
    })
    .map((file) => file.path);
}
