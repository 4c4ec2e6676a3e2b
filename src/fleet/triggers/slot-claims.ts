import type { RedisClient } from "../../queues.js";

/**
 * Who sweeps which slot, in one Redis hash per plan: one call when a daemon looks for a slot (which
 * also marks the one it just swept as done), none while it sweeps. A field per slot, on a ring of
 * twice an interval's slots, holds `slot holder leaseUntil`; `-` as the holder marks a slot done.
 * A slot nobody holds, or whose lease ran out before it was done (its daemon died), is free. The
 * hash's `since` is the first slot ever looked for: a fleet that starts, or a Redis that lost the
 * hash, does not take the slots before it for abandoned ones. Time is Redis's own, so daemons whose
 * clocks differ agree on when a lease runs out.
 */
const CLAIM = `
local key, me = KEYS[1], ARGV[1]
local done, oldest, newest = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ring, lease, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function holderOf(slot)
  local v = redis.call('HGET', key, slot % ring)
  if not v then return nil end
  local s, holder, untilMs = string.match(v, '^(%d+) (%S+) (%d+)$')
  if tonumber(s) ~= slot then return nil end
  return holder, tonumber(untilMs)
end
if done >= 0 and holderOf(done) == me then redis.call('HSET', key, done % ring, done .. ' - 0') end
local got = -1
if newest >= 0 then
  local since = tonumber(redis.call('HGET', key, 'since'))
  if not since then
    since = newest
    redis.call('HSET', key, 'since', since)
  end
  for slot = math.max(oldest, since), newest do
    local holder, untilMs = holderOf(slot)
    if not holder or (holder ~= '-' and untilMs <= now) then
      redis.call('HSET', key, slot % ring, slot .. ' ' .. me .. ' ' .. (now + lease))
      got = slot
      break
    end
  end
end
redis.call('PEXPIRE', key, ttl)
return got`;

/** The holder's lease on `slot` runs `lease` ms from now; 0 when the slot is no longer its own. */
const RENEW = `
local key, me, slot = KEYS[1], ARGV[1], tonumber(ARGV[2])
local ring, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local s, holder = string.match(redis.call('HGET', key, slot % ring) or '', '^(%d+) (%S+) ')
if tonumber(s) ~= slot or holder ~= me then return 0 end
local t = redis.call('TIME')
redis.call('HSET', key, slot % ring, slot .. ' ' .. me .. ' ' .. (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + lease))
return 1`;

export interface ClaimPlan {
  slices: number;
  sliceMs: number;
  intervalMs: number;
}

/** One daemon's claims on the sweep's slots. */
export class SlotClaims {
  /** How long a claim holds without renewal: a slot's sweep takes about 1.5 slices, so normally none. */
  readonly leaseMs: number;
  private readonly key: string;
  private readonly ring: number;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly holder: string,
    private readonly plan: ClaimPlan,
  ) {
    this.key = `${prefix}:sweep-slots:${plan.sliceMs}`;
    this.ring = 2 * plan.slices;
    this.leaseMs = Math.max(2_000, 4 * plan.sliceMs);
  }

  /** The oldest free slot from `oldest` to `newest`, now this daemon's, or null; `done`, if given, is marked swept first. */
  async claim(oldest: number, newest: number, done?: number): Promise<number | null> {
    const got = await this.call(CLAIM, done ?? -1, oldest, newest);
    return got >= 0 ? got : null;
  }

  /** Marks `slot`, which this daemon holds, as swept. */
  async finish(slot: number): Promise<void> {
    await this.call(CLAIM, slot, -1, -1);
  }

  /** Keeps this daemon's claim on `slot` for another lease; false when it has lost it. */
  async renew(slot: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key, this.holder, slot, this.ring, this.leaseMs)) === 1;
  }

  private async call(script: string, done: number, oldest: number, newest: number): Promise<number> {
    const ttl = 2 * this.plan.intervalMs + this.leaseMs;
    return (await this.redis.eval(script, 1, this.key, this.holder, done, oldest, newest, this.ring, this.leaseMs, ttl)) as number;
  }
}
