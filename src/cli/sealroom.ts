#!/usr/bin/env node
// The one command-line entry of Sealroom. Every part (selftest, daemon, relay, provisioning, admin)
// is a subcommand registered from its own module, each with --help.
import { Command } from 'commander';
import { registerCommands } from './commands.js';

const program = new Command()
  .name('sealroom')
  .description('Sealroom meeting-room appliance: E2EE core, device daemon, relay and provisioning')
  .version('0.1.0')
  .showHelpAfterError();

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`sealroom: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
