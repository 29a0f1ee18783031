import { describe, expect, it } from "vitest";
import { SHORTCUTS, actionFor } from "./shortcuts";

const key = (k: string, mods: Partial<{ ctrlKey: boolean; shiftKey: boolean; metaKey: boolean; altKey: boolean }> = {}) => ({
  key: k,
  ctrlKey: false,
  shiftKey: false,
  metaKey: false,
  altKey: false,
  ...mods,
});

describe("shortcuts", () => {
  it("maps keys to actions", () => {
    expect(actionFor(key("3"))).toEqual({ action: "class", slot: 2 });
    expect(actionFor(key("z", { ctrlKey: true }))?.action).toBe("undo");
    expect(actionFor(key("Z", { ctrlKey: true, shiftKey: true }))?.action).toBe("redo");
    expect(actionFor(key("z", { metaKey: true, shiftKey: true }))?.action).toBe("redo");
    expect(actionFor(key("y", { ctrlKey: true }))?.action).toBe("redo");
    expect(actionFor(key("[", {}))?.action).toBe("brush-smaller");
    expect(actionFor(key("?", { shiftKey: true }))?.action).toBe("help");
    expect(actionFor(key("f"))?.action).toBe("fit");
    expect(actionFor(key("Enter"))?.action).toBe("submit");
    expect(actionFor(key("=", {}))?.action).toBe("zoom-in");
    expect(actionFor(key("f", { ctrlKey: true }))).toBeNull();
    expect(actionFor(key("z"))).toBeNull();
    expect(actionFor(key("g"))?.action).toBe("tool-fill");
    expect(actionFor(key("G", { shiftKey: true }))?.action).toBe("fill-remaining");
    expect(actionFor(key("p"))?.action).toBe("previous");
  });

  it("lists every action once, with a key", () => {
    const actions = SHORTCUTS.map((shortcut) => shortcut.action);
    expect(new Set(actions).size).toBe(actions.length);
    expect(SHORTCUTS.every((shortcut) => shortcut.keys.length > 0)).toBe(true);
  });
});
