// A labelled data set the classifier tests generate: commit messages whose label (fix, feature, docs, test) follows
// from keywords, written around varied filler words, with 8% of the labels flipped at random as noise.
import * as fs from 'node:fs';

export const commitLabels = ['docs', 'feature', 'fix', 'test'] as const;

const keywords: Record<(typeof commitLabels)[number], string[]> = {
  fix: ['fix', 'bug', 'crash', 'broken', 'regression', 'null pointer', 'off by one', 'hotfix'],
  feature: ['add', 'implement', 'support', 'introduce', 'new option', 'enable', 'allow'],
  docs: ['readme', 'documentation', 'docs', 'typo in guide', 'comment', 'changelog', 'tutorial'],
  test: ['test', 'unit tests', 'coverage', 'flaky spec', 'fixture', 'assertion', 'mock'],
};
const subjects = [
  'parser',
  'login page',
  'cache',
  'scheduler',
  'http client',
  'tokenizer',
  'settings panel',
  'exporter',
  'database layer',
  'upload form',
  'metrics',
  'cli',
  'router',
  'theme',
  'queue worker',
];
const fillers = ['for the', 'in', 'around', 'when using the', 'of the', 'inside', 'across the'];

export interface CommitRow {
  message: string;
  label: string;
}

/** `count` rows, the same for a given seed; label frequencies are unbalanced (fix most, test least). */
export function commitMessages(count: number, seed = 7, noise = 0.08): CommitRow[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const weights = [0.2, 0.3, 0.35, 0.15];
  const rows: CommitRow[] = [];
  for (let i = 0; i < count; i++) {
    let r = random();
    let k = 0;
    while (r > weights[k] && k < weights.length - 1) r -= weights[k++];
    const label = commitLabels[k];
    const message = `${pick(keywords[label])} ${pick(fillers)} ${pick(subjects)} #${Math.floor(random() * 900 + 100)}`;
    const shown = random() < noise ? pick(commitLabels) : label;
    rows.push({ message, label: shown });
  }
  return rows;
}

const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function writeCommitCsv(file: string, rows: readonly CommitRow[]): void {
  fs.writeFileSync(
    file,
    ['message,label', ...rows.map((r) => `${csvField(r.message)},${csvField(r.label)}`)].join('\n') + '\n',
  );
}

export function writeCommitJsonl(file: string, rows: readonly CommitRow[]): void {
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}
