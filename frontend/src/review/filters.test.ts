import { describe, expect, it } from "vitest";
import { PAGE_SIZE, filterQuery, filtersFrom, stateLabel } from "./filters";

describe("image browser filters", () => {
  it("reads valid filters from the address and drops the rest", () => {
    const filters = filtersFrom(new URLSearchParams("round_id=3&state=sent_back&annotator_id=x&offset=48"));
    expect(filters).toEqual({ round_id: 3, state: "sent_back", annotator_id: null, offset: 48, limit: PAGE_SIZE });
    expect(filtersFrom(new URLSearchParams("state=finished&offset=-5&round_id=0"))).toMatchObject({
      round_id: null,
      state: null,
      offset: 0,
    });
  });

  it("writes only the filters that are set, and round-trips", () => {
    const query = filterQuery({ round_id: 2, state: "submitted", annotator_id: null, offset: 0, limit: undefined });
    expect(query).toBe("round_id=2&state=submitted&offset=0");
    expect(filtersFrom(new URLSearchParams(query))).toMatchObject({ round_id: 2, state: "submitted" });
  });

  it("names states as people say them", () => {
    expect(stateLabel("sent_back")).toBe("sent back");
    expect(stateLabel("accepted")).toBe("accepted");
  });
});
