// Registry of subcommands. Each part of the system adds one line here, importing its own module
// lazily so `sealroom selftest` does not load GStreamer or fastify.
import type { Command } from 'commander';
import { registerSelftestCommand } from './selftest.js';
import { registerSimulateCommand } from './simulate.js';
import { registerDaemonCommand } from './daemon.js';
import { registerDemoCommand } from './demo.js';
import { registerRelayCommand } from './relay.js';
import { registerRoomCommand } from './room.js';
import { registerUpdateCommand } from './update.js';
import { registerKioskCommand } from '../../device/kiosk/cli.js';
import { registerHidCommand } from '../../device/hid/cli.js';
import { registerProvisioningCommands } from '../../provisioning/cli.js';
import { registerMediaCommand } from '../../device/media/cli.js';

export function registerCommands(program: Command): void {
  registerSelftestCommand(program); // the crypto core loads only when `selftest` runs
  registerSimulateCommand(program); // the E2EE core loads only when `simulate` runs
  registerRelayCommand(program);
  registerDaemonCommand(program);
  registerRoomCommand(program);
  registerUpdateCommand(program); // `update status|check|apply|rollback`: slots and tuf-js load only when run
  registerDemoCommand(program); // relay/daemon load only when run
  registerKioskCommand(program); // launcher loads only when `kiosk` runs
  registerHidCommand(program); // node-hid loads only when `hid` runs
  registerProvisioningCommands(program); // `provisioning …` and `admin …`; fastify/stores load only when run
  registerMediaCommand(program); // `media devices|check`; device detection and templates load only when run
}
