import { describe, expect, it } from 'vitest';
import { SERVICES, requireService, type ServiceName } from './helpers/services.js';

// Under CI every loopback service must be up (.ci/run starts them); a missing one fails here
// instead of letting service-backed tests skip silently.
describe('loopback services', () => {
  for (const name of Object.keys(SERVICES) as ServiceName[]) {
    it(`${name} is reachable (or loudly skipped outside CI)`, async (ctx) => {
      const up = await requireService(name);
      if (!up) ctx.skip();
      expect(up).toBe(true);
    });
  }
});
