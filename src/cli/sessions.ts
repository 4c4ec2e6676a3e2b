import { Command } from "commander";
import {
  cancelSession, enqueueSession, enqueueSessions, listSessions, showSession, type AttemptView, type SessionView,
} from "../fleet/sessions/sessions.js";
import { withFleet } from "./context.js";
import { dash, emit, fields, intArg, table, UsageError, when, type Out } from "./output.js";
import { SESSION_STATUSES } from "../fleet/instances/open-session.js";

function attemptLine(a: AttemptView): string {
  const outcome = a.outcome ?? "running";
  const why = a.error ? ` — ${a.error}` : "";
  const resumed = a.resumes > 0 ? `, resumed ${a.resumes}×` : "";
  return `  #${a.number}  ${when(a.startedAt)} → ${when(a.endedAt)}  ${outcome}  ${a.qrCount} QR${resumed}${why}`;
}

function took(s: SessionView): string {
  if (!s.startedAt) return "-";
  const end = s.endedAt ?? new Date();
  return `${Math.round((end.getTime() - s.startedAt.getTime()) / 1000)} s${s.endedAt ? "" : " so far"}`;
}

export function describeSession(s: SessionView): string {
  const text = fields([
    ["session", s.id],
    ["instance", `${s.idInstance}${s.label ? ` (${s.label})` : ""} ${s.instanceId}`],
    ["trigger", s.trigger],
    ["status", s.status],
    ["attempt", `${s.attempt}/${s.maxAttempts}`],
    ["QR codes", String(s.qrCount)],
    ["phone", dash(s.phone)],
    ["error", s.errorCode ? `${s.errorCode}${s.error ? `: ${s.error}` : ""}` : "-"],
    ["created", when(s.createdAt)],
    ["due", when(s.dueAt)],
    ["started", when(s.startedAt)],
    ["ended", when(s.endedAt)],
    ["took", took(s)],
  ]);
  const attempts = s.attempts ?? [];
  return attempts.length === 0 ? text : `${text}\nattempts:\n${attempts.map(attemptLine).join("\n")}`;
}

function sessionTable(list: SessionView[]): string {
  const rows = list.map((s) => [
    s.id, s.idInstance, s.trigger, s.status, `${s.attempt}/${s.maxAttempts}`, String(s.qrCount),
    when(s.createdAt), when(s.endedAt), dash(s.errorCode),
  ]);
  return table(["session", "idInstance", "trigger", "status", "attempt", "QR", "created", "ended", "error"], rows, "no sessions");
}

function enqueueCommand(): Command {
  return new Command("enqueue")
    .description("start a QR session for an instance now (or show the one already open); does not wait for it")
    .argument("[instance]", "the instance's id or idInstance")
    .option("--all-unlinked", "start one for every enabled instance that is logged out or was never checked (none twice)")
    .option("--json", "print JSON")
    .action(async (ref: string | undefined, o: Out & { allUnlinked?: boolean }) => {
      if ((ref === undefined) === (o.allUnlinked !== true)) throw new UsageError("give an instance or --all-unlinked (not both)");
      if (o.allUnlinked) {
        const bulk = await withFleet((ctx) => enqueueSessions(ctx, { allUnlinked: true }, "admin"));
        return emit(o, bulk, (b) => `${b.created} sessions queued; ${b.alreadyOpen} instances already had one open`);
      }
      const result = await withFleet((ctx) => enqueueSession(ctx, ref!, "admin"));
      emit(o, result, ({ session: s, created }) =>
        created
          ? `${s.id}\nnew session queued for instance ${s.idInstance}`
          : `${s.id}\ninstance ${s.idInstance} already has this session open (${s.status}, attempt ${s.attempt}/${s.maxAttempts})`,
      );
    });
}

function listCommand(): Command {
  return new Command("sessions")
    .description("list QR sessions, newest first")
    .option("--instance <ref>", "only this instance's (id or idInstance)")
    .option("--status <status>", `only sessions in this status: ${SESSION_STATUSES.join(", ")}`)
    .option("--limit <n>", "at most this many", intArg(1, 10_000), 50)
    .option("--json", "print JSON")
    .action(async (o: Out & { instance?: string; status?: string; limit: number }) => {
      const list = await withFleet((ctx) => listSessions(ctx, { instance: o.instance, status: o.status, limit: o.limit }));
      emit(o, list, sessionTable);
    });
}

function showCommand(): Command {
  return new Command("show")
    .description("show a session with each of its attempts")
    .argument("<id>", "the session id")
    .option("--json", "print JSON")
    .action(async (id: string, o: Out) => emit(o, await withFleet((ctx) => showSession(ctx, id)), describeSession));
}

function cancelCommand(): Command {
  return new Command("cancel")
    .description("end an open session for good; the worker running it stops")
    .argument("<session>", "the session id")
    .option("--json", "print JSON")
    .action(async (id: string, o: Out) => {
      const s = await withFleet((ctx) => cancelSession(ctx, id));
      emit(o, s, (v) =>
        v.status === "cancelled" ? `session ${v.id} cancelled` : `session ${v.id} had already ended (${v.status}): nothing to cancel`,
      );
    });
}

export function sessionCommands(): Command[] {
  const session = new Command("session").description("look at one QR session").addCommand(showCommand());
  return [enqueueCommand(), listCommand(), session, cancelCommand()];
}
