// fetch that trusts exactly one CA (the provisioning service's TLS CA the device pinned), not the
// system store: a network attacker with a publicly trusted certificate still cannot answer.
import { Agent, fetch as undiciFetch } from 'undici';

export function createPinnedFetch(caPem: string): typeof fetch {
  const dispatcher = new Agent({ connect: { ca: caPem, rejectUnauthorized: true } });
  return ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
