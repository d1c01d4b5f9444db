import { randomInt } from "node:crypto";

/** A seeded pseudo-random source, so a failing run can be replayed. */
export interface RandomSource {
  readonly seed: number;
  /** A whole number in [0, below). */
  int(below: number): number;
  pick<T>(items: readonly T[]): T;
}

/**
 * mulberry32, seeded from the environment variable `name` if set, else at
 * random; tests print the seed. A sequential test replays exactly; where
 * concurrent workers share the source, the choices depend on timing too, and
 * the seed only narrows a failure down.
 */
export function randomSource(name: string): RandomSource {
  const given = process.env[name];
  const seed = given !== undefined && given !== "" ? Number(given) >>> 0 : randomInt(2 ** 32);
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    seed,
    int: (below) => Math.floor(next() * below),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}
