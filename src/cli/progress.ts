/**
 * Progress on stderr, so stdout holds only the result: on a terminal one line rewritten in place;
 * elsewhere (a log, a pipe) a plain line each time, or nothing when the command says so.
 */
export interface ProgressLine {
  show(text: string): void;
  /** Ends a line drawn in place, so what follows starts on a line of its own. */
  end(): void;
}

export function progressLine(stream: NodeJS.WriteStream = process.stderr, offTerminal: "lines" | "silent" = "lines"): ProgressLine {
  let drawn = false;
  return {
    show(text) {
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        drawn = true;
      } else if (offTerminal === "lines") {
        stream.write(`${text}\n`);
      }
    },
    end() {
      if (drawn) stream.write("\n");
      drawn = false;
    },
  };
}
