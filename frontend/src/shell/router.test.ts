import { describe, expect, it } from "vitest";
import { match } from "./router";

const page = (): void => undefined;
const routes = [
  { pattern: "/", page, title: "Home" },
  { pattern: "/projects/:projectId/label", page, title: "Label" },
];

describe("router", () => {
  it("matches patterns and extracts parameters", () => {
    expect(match(routes, "/")?.route.title).toBe("Home");
    expect(match(routes, "/projects/12/label")?.params).toEqual({ projectId: "12" });
    expect(match(routes, "/projects/12/label/")?.params).toEqual({ projectId: "12" });
    expect(match(routes, "/projects/12")).toBeNull();
  });
});
