import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerSimulateCommand, runSimulation } from '../src/cli/simulate.js';

describe('sealroom simulate', () => {
  it('runs a meeting through joins, a leave, a periodic rekey and a hand-over; all checks pass', async () => {
    const lines: string[] = [];
    const failures = await runSimulation({
      participants: 5,
      rounds: 4,
      seed: 'test',
      log: (l) => lines.push(l),
    });
    expect(failures).toBe(0);
    const text = lines.join('\n');
    expect(lines.filter((l) => l.startsWith('epoch ')).map((l) => Number(l.split(' ')[1]))).toEqual([
      2, 3, 4, 5, 6,
    ]);
    expect(text).toMatch(/left: fresh key/);
    expect(text).toMatch(/joined \(one batched rekey\)/);
    expect(text).toMatch(/periodic rekey/);
    expect(text).toMatch(/leader hand-over to room-2/);
    expect(text).toMatch(/refused to the 1 departed/);
    expect(lines.at(-1)).toBe('simulation ok');
    // Same code on every participant line of an epoch; a new one after the hand-over.
    const codes = lines.flatMap((l) => l.match(/security code (\d{5}(?: \d{5}){7})$/)?.[1] ?? []);
    expect(codes.length).toBe(5 + 4 + 6 + 6 + 6); // every participant of every epoch
    expect(new Set(codes).size).toBe(2);
  });

  it('is reproducible with a seed', async () => {
    const run = async () => {
      const lines: string[] = [];
      await runSimulation({ participants: 3, rounds: 2, seed: 'same', log: (l) => lines.push(l) });
      return lines;
    };
    expect(await run()).toEqual(await run());
  });

  it('has --help and validates its options', async () => {
    const program = new Command().exitOverride();
    registerSimulateCommand(program);
    const simulate = program.commands.find((c) => c.name() === 'simulate')!;
    expect(simulate.helpInformation()).toMatch(/--participants <n>[\s\S]*--rounds <n>/);
    simulate.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    await expect(program.parseAsync(['node', 'sealroom', 'simulate', '--participants', '1'])).rejects.toThrow(
      /--participants must be an integer 2\.\.200/,
    );
  });
});
