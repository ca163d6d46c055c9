// Trainings take turns per process, each with its data read. A thousand pairs added together come
// due together (every `retrainEveryCandles` candles, the same minute for all of them), and each
// training first reads its window of candles (up to `maxTrainCandles`, 43,200 by default) into
// memory. The CPU part ran one at a time in a queue of its own, but every due trainer read its
// window first and held it while it waited there: a thousand windows at once. With turns (the one
// limit now, CPU included), one window is in memory at a time, and a trainer waiting for its turn
// holds nothing but its place.

import { Turns } from "../../supervisor/turns.js";

/** The runtime's turns (supervisor/turns.ts), under the trainer's name for them. */
export { Turns as TrainingTurns };

/** This process's turns: one training (read and compute) at a time. */
export const trainingTurns = new Turns(1);
