/**
 * A fake GREEN-API over real HTTP and websocket, scripted per instance, for tests, the demo
 * and the benchmark, speaking the provider's REST and websocket wire formats.
 */
export { startSimulator, type Simulator, type SimulatorOptions, type SimulatorStats } from "./server.js";
export { generateInstances, type GenerateOptions } from "./instances.js";
export { FATES, DEFAULT_SCRIPT, type Fate, type Script, type StateStep } from "./script.js";
export {
  SIM_STATES, type SimState, type InstanceDefinition, type SimulatorHooks, type SentQrFrame, type SocketEvent,
} from "./provider.js";
export type { SimSettings } from "./settings.js";
export { PARTNER_ANSWERS, type PartnerAnswer, type PartnerEntryPatch, type SimPartnerControls } from "./partner.js";
export { FRAME_TAG_KEYWORD, type ImageMode } from "./images.js";
export { withTextChunk } from "./png-text.js";
export { crc32 } from "../lib/png.js";
export { simulatorCommand, runSimulatorCli, type SimulatorCommandOptions, type SimulatorCommandIo } from "./cli.js";
