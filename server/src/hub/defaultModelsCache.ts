// The default home of pulled models: a cache folder under the user's data directory ($XDG_CACHE_HOME or
// ~/.cache on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows), one `<owner>--<name>` folder each.
import * as os from 'node:os';
import * as path from 'node:path';

export interface CacheLocation {
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
  homedir?: string;
}

/** The folder that holds pulled models, e.g. `~/.cache/modelwright/models`. */
export function defaultModelsCache(where: CacheLocation = {}): string {
  const platform = where.platform ?? process.platform;
  const env = where.env ?? process.env;
  const home = where.homedir ?? os.homedir();
  const join = platform === 'win32' ? path.win32.join : path.posix.join;
  if (platform === 'win32') {
    const local = env.LOCALAPPDATA?.trim() || join(home, 'AppData', 'Local');
    return join(local, 'modelwright', 'models');
  }
  if (platform === 'darwin') return join(home, 'Library', 'Caches', 'modelwright', 'models');
  const xdg = env.XDG_CACHE_HOME?.trim();
  // The XDG spec says to ignore a relative path.
  const cache = xdg && path.posix.isAbsolute(xdg) ? xdg : join(home, '.cache');
  return join(cache, 'modelwright', 'models');
}

/** The folder name of a repo: `owner--name`, with `@<revision>` when the revision is not main. */
export function pullFolderName(repo: string, revision = 'main'): string {
  const name = repo.split('/').join('--');
  return revision === 'main' ? name : `${name}@${revision.replace(/[^A-Za-z0-9._-]+/g, '-')}`;
}

/** Where `modelwright pull REPO` puts a model when no folder is given. */
export function defaultPullFolder(repo: string, revision = 'main', where: CacheLocation = {}): string {
  const join = (where.platform ?? process.platform) === 'win32' ? path.win32.join : path.posix.join;
  return join(defaultModelsCache(where), pullFolderName(repo, revision));
}
