/** The signed-in user, fetched once per page load and forgotten at logout or on a 401. */
import { api } from "../api/client";
import type { User } from "../api/types";

let current: User | null | undefined;

export async function currentUser(): Promise<User | null> {
  if (current === undefined) current = await api.me();
  return current;
}

export function setCurrentUser(user: User | null): void {
  current = user;
}
