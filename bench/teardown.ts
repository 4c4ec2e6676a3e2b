/**
 * Everything a run starts or creates registers how to undo it here, the moment it exists; the
 * end of the run, an error and Ctrl-C all unwind the same stack, newest first (daemons stop
 * before their database is dropped), each step bounded so the bench always ends.
 */
export class Teardown {
  private readonly steps: Array<{ name: string; undo: () => Promise<unknown> }> = [];
  private unwinding: Promise<void> | undefined;

  /** Registers `undo`; the returned function runs it now (once) and takes it off the stack. */
  add(name: string, undo: () => Promise<unknown>): () => Promise<void> {
    const step = { name, undo };
    this.steps.push(step);
    return async () => {
      const at = this.steps.indexOf(step);
      if (at < 0) return;
      this.steps.splice(at, 1);
      await step.undo();
    };
  }

  /**
   * Unwinds what is left; a failing step is reported on stderr and the next one still runs.
   * A second caller (an uncaught error during the first) waits for the same unwinding, so the
   * order newest-first holds whoever asks.
   */
  run(boundMs = 45_000): Promise<void> {
    return (this.unwinding ??= this.unwind(boundMs));
  }

  private async unwind(boundMs: number): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`gave up after ${boundMs / 1000} s`)), boundMs);
      });
      try {
        await Promise.race([step.undo(), bound]);
      } catch (err) {
        process.stderr.write(`bench: cleanup step "${step.name}" failed: ${(err as Error).message}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
