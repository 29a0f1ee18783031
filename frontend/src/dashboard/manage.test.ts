import { describe, expect, it } from "vitest";
import type { RoundRow } from "./api";
import { SETTINGS, parsed } from "./manage";
import { modelCell } from "./sections";

describe("encoder zoom setting", () => {
  it("sits next to the model and is sent as a number", () => {
    const names = SETTINGS.map((field) => field.name);
    expect(names.indexOf("encoder_zoom")).toBe(names.indexOf("model_architecture") + 1);
    const zoom = SETTINGS.find((field) => field.name === "encoder_zoom");
    expect(zoom?.options).toEqual(["1", "2"]);
    expect(zoom?.hint).toMatch(/upsampled 2x/);
    expect(parsed(zoom!, "2")).toBe(2);
    const model = SETTINGS.find((field) => field.name === "model_architecture");
    expect(parsed(model!, "unet")).toBe("unet");
  });

  it("shows a round model's zoom beside its network when it is not 1", () => {
    const round = {
      model_kind: "efficientnet_lite0",
      model_encoder_zoom: 2,
      iterations: 120,
      max_iterations: 300,
      stopped_early: true,
    } as RoundRow;
    expect(modelCell(round)).toBe("efficientnet_lite0 zoom 2, 120/300 it. (stopped early)");
    expect(modelCell({ ...round, model_encoder_zoom: 1, iterations: null })).toBe("efficientnet_lite0");
    expect(modelCell({ ...round, model_kind: null })).toBe("–");
  });
});
