import { waitFor, type CallLimiter } from "../../greenapi/pace.js";
import type { Logger } from "../../log.js";
import type { RedisClient } from "../../queues.js";
import { within } from "../../lib/deadline.js";

/**
 * The provider's rate limits, kept in Redis so every daemon shares them: one call per
 * `instanceIntervalMs` per instance and method (GREEN-API: about 1 per second), and at most
 * `hostRps` calls per second toward each apiUrl host. One script call takes a slot for both (one
 * round trip per provider call); Redis's clock is the one clock, so daemons' clocks need not agree.
 */

export interface PaceOptions {
  redis: RedisClient;
  /** Key prefix (the queues' prefix), so test runs and fleets sharing a Redis do not meet. */
  prefix: string;
  /** Least time between two calls of one method to one instance, in ms; 0 for no limit. */
  instanceIntervalMs: number;
  /** Calls per second toward one apiUrl host, every instance together; 0 for no limit. */
  hostRps: number;
  log: Logger;
}

/**
 * KEYS[1] the instance-and-method slot, KEYS[2] the host's. ARGV: their intervals (ms, may be 0).
 * While the instance's next slot is ahead, nothing is taken and the answer is {0, wait}: the caller
 * sleeps and asks again, so an instance told to wait 30 s by a 429 holds no slot of the host's.
 * Otherwise {1, wait}: both slots are taken and the call goes after `wait` ms.
 */
const TAKE_SLOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local mine = tonumber(redis.call('GET', KEYS[1]) or '0')
if mine > now then return {0, math.ceil(mine - now)} end
local slot = now
local hostInterval = tonumber(ARGV[2])
if hostInterval > 0 then
  local host = tonumber(redis.call('GET', KEYS[2]) or '0')
  if host > slot then slot = host end
  redis.call('SET', KEYS[2], tostring(slot + hostInterval), 'PX', math.ceil(slot - now + hostInterval) + 1000)
end
local interval = tonumber(ARGV[1])
if interval > 0 then
  redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil(slot - now + interval) + 1000)
end
return {1, math.ceil(slot - now)}`;

/** KEYS[1] the instance-and-method slot; ARGV[1] ms of quiet asked for. Only ever moves the slot later. */
const HOLD_OFF = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local until_ = now + tonumber(ARGV[1])
local mine = tonumber(redis.call('GET', KEYS[1]) or '0')
if mine < until_ then redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1])) + 1000) end
return 1`;

/** A Redis that is restarting queues commands for seconds; the provider call does not wait for it that long. */
const REDIS_ANSWER_MS = 1000;
const REDIS_LATE = `Redis did not answer within ${REDIS_ANSWER_MS} ms`;

/** One warning a minute for the whole process, not one per instance, while Redis is away. */
const WARN_EVERY_MS = 60_000;
let lastWarnedAt = 0;

/** Times one call may find its instance held off and ask again before it goes anyway: every loop has a bound. */
const MAX_TURNS = 1000;

/** The limiter of one instance's REST client. */
export function providerPace(opts: PaceOptions, apiUrl: string, idInstance: string): CallLimiter | undefined {
  if (opts.instanceIntervalMs <= 0 && opts.hostRps <= 0) return undefined;
  const host = new URL(apiUrl).host;
  const hostKey = `${opts.prefix}:pace:host:${host}`;
  const keyOf = (method: string) => `${opts.prefix}:pace:instance:${host}:${idInstance}:${method}`;
  const hostInterval = opts.hostRps > 0 ? 1000 / opts.hostRps : 0;
  // Redis away must not stop the fleet from reaching the provider: the call goes unpaced.
  const unpaced = (err: unknown) => {
    if (Date.now() - lastWarnedAt < WARN_EVERY_MS) return;
    lastWarnedAt = Date.now();
    opts.log.warn({ err }, "provider calls go unpaced: Redis did not answer the rate limiter");
  };
  return {
    async acquire(method, signal) {
      for (let turn = 0; turn < MAX_TURNS; turn++) {
        let answer: [number, number];
        try {
          answer = await within(opts.redis.eval(TAKE_SLOT, 2, keyOf(method), hostKey, opts.instanceIntervalMs, hostInterval) as Promise<[number, number]>, REDIS_ANSWER_MS, REDIS_LATE);
        } catch (err) {
          return unpaced(err);
        }
        const [taken, waitMs] = answer;
        await waitFor(waitMs, signal);
        if (taken === 1) return;
      }
    },
    async holdOff(method, ms) {
      await opts.redis.eval(HOLD_OFF, 1, keyOf(method), Math.max(0, Math.round(ms))).catch(unpaced);
    },
  };
}
