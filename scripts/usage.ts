// `--help` / `-h` for the long-running scripts (fuzz, powercut, reliability, soak): prints the
// script's own header comment — where its usage and what it measures are written — and exits.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function exitWithUsageIfAsked(scriptUrl: string): void {
  if (!process.argv.slice(2).some((a) => a === '--help' || a === '-h')) return;
  const lines = readFileSync(fileURLToPath(scriptUrl), 'utf8').split('\n');
  const header: string[] = [];
  for (const line of lines) {
    if (!line.startsWith('//')) break;
    header.push(line.replace(/^\/\/ ?/, ''));
  }
  console.log(header.join('\n').trim());
  process.exit(0);
}
