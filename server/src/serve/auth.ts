// Who may call the service: loopback binds need no key, any other bind address needs an API key, sent as
// `Authorization: Bearer KEY` and compared in constant time (SHA-256 digests of equal length, timingSafeEqual).
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Shortest API key accepted: a key an attacker could guess defeats the point. */
export const MIN_API_KEY_LENGTH = 16;

/** True for host names and addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** The key in an API key file (surrounding whitespace removed); warns when others may read the file. */
export function readApiKeyFile(file: string, warn: (message: string) => void = () => {}): string {
  const stat = fs.statSync(file);
  if (!stat.isFile()) throw new Error(`${file} is not a file`);
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0)
    warn(`${file} can be read by other users; chmod 600 it`);
  const key = fs.readFileSync(file, 'utf8').trim();
  checkApiKey(key, file);
  return key;
}

export function checkApiKey(key: string, source = 'the API key'): void {
  if (key.length < MIN_API_KEY_LENGTH)
    throw new Error(`${source}: an API key needs at least ${MIN_API_KEY_LENGTH} characters`);
  if (/\s/.test(key)) throw new Error(`${source}: an API key cannot contain whitespace`);
}

/** A checker of Authorization headers against one key; the comparison time does not depend on the key. */
export function bearerChecker(key: string): (authorization: string | undefined) => boolean {
  const expected = createHash('sha256').update(key, 'utf8').digest();
  return (authorization) => {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    const given = createHash('sha256')
      .update(match ? match[1] : '', 'utf8')
      .digest();
    // Both digests are 32 bytes, so timingSafeEqual never throws and leaks nothing about the key's length.
    return timingSafeEqual(given, expected) && match !== null;
  };
}
