import { UNRESTRICTED, type ChannelIdentity } from '../../channels/index.js';
import { can, type Principal } from '../auth/index.js';

/** What a verified principal may do on channels; everything when auth is off. */
export function channelIdentity(principal: Principal, authEnabled: boolean): ChannelIdentity & { readonly expiresAt?: number } {
  if (!authEnabled) return UNRESTRICTED;
  const capabilities = principal.admin
    ? [...(principal.channels ?? []), { match: '*', allow: ['publish', 'history', 'presence'] as const }]
    : (principal.channels ?? []);
  return {
    user: principal.subject,
    unrestricted: false,
    capabilities,
    canReadTopic: (topic) => can(principal, 'read', topic),
    ...(principal.info === undefined ? {} : { info: principal.info }),
    ...(principal.expiresAt === undefined ? {} : { expiresAt: principal.expiresAt }),
  };
}
