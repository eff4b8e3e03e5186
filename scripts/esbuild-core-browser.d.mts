import type { Plugin } from 'esbuild';
/** esbuild plugin: the E2EE core's node:crypto backend → its @noble backend; `strict` refuses node builtins. */
export function browserCorePlugin(options?: { strict?: boolean }): Plugin;
