/**
 * Prints the README's broker options table from the settings table:
 *   node dist/broker/config/print-settings.js                  the markdown, on stdout
 *   node dist/broker/config/print-settings.js --readme README.md   rewrites the table there
 * test/unit/readme-settings.test.ts fails until the README holds what this prints.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { findSettingsTable, settingsTable } from './settings.js';

function main(argv: string[]): void {
  const at = argv.indexOf('--readme');
  if (at < 0) {
    process.stdout.write(`${settingsTable()}\n`);
    return;
  }
  const path = argv[at + 1];
  if (!path) throw new Error('--readme needs a file');
  const readme = readFileSync(path, 'utf8');
  const place = findSettingsTable(readme);
  if (!place) throw new Error(`${path} has no "| option | default | meaning |" table`);
  writeFileSync(path, `${readme.slice(0, place.start)}${settingsTable()}\n${readme.slice(place.end)}`);
}

main(process.argv.slice(2));
