/** Runs a sweep on a fixed interval, one at a time, until stopped. */
export interface Sweeper {
  /** Stops the schedule and waits for a sweep in progress to finish. */
  stop(): Promise<void>;
}

export interface SweeperOptions<R> {
  /** One sweep; resolves to what it did. */
  readonly sweep: () => Promise<R>;
  /** At most 2^31 - 1 ms, as for any Node timer. */
  readonly intervalMs: number;
  readonly onSwept: (result: R) => void;
  readonly onError: (error: unknown) => void;
}

/**
 * Calls `sweep` every `intervalMs`. The timer does not keep the process alive,
 * and a slow sweep delays the next one rather than overlapping it.
 */
export function startSweeper<R>(options: SweeperOptions<R>): Sweeper {
  const { sweep, intervalMs, onSwept, onError } = options;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep().then(onSwept, onError).finally(() => {
        running = undefined;
        schedule();
      });
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
