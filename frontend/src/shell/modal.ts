/**
 * A modal message with buttons; Enter presses the primary button, Escape the cancel one.
 * Returns the pressed button's value.
 */
import { h } from "./dom";

export interface ModalButton<T> {
  label: string;
  value: T;
  primary?: boolean;
  cancel?: boolean;
}

export interface OpenModal {
  element: HTMLElement;
  close(): void;
  /** Handles Enter/Escape while the modal is open; true when the key was used. */
  handleKey(event: KeyboardEvent): boolean;
}

export function showModal<T>(
  host: HTMLElement,
  title: string,
  body: (Node | string)[],
  buttons: ModalButton<T>[],
  onChoose: (value: T) => void,
  kind = "dialog",
): OpenModal {
  const actions = h("div", { class: "modal-actions" });
  const card = h(
    "div",
    { class: "modal-card", role: "dialog", "aria-modal": "true", "aria-label": title },
    h("h2", {}, title),
    ...body.map((part) => (typeof part === "string" ? h("p", {}, part) : part)),
    actions,
  );
  const element = h("div", { class: "modal", "data-modal": kind }, card);
  let open = true;
  const choose = (value: T): void => {
    if (!open) return;
    close();
    onChoose(value);
  };
  for (const button of buttons) {
    const node = h(
      "button",
      { type: "button", class: button.primary ? "primary" : "", "data-value": String(button.value) },
      button.label,
    );
    node.addEventListener("click", () => choose(button.value));
    actions.append(node);
  }
  function close(): void {
    open = false;
    element.remove();
  }
  host.append(element);
  return {
    element,
    close,
    handleKey(event: KeyboardEvent): boolean {
      if (!open) return false;
      if (event.key === "Enter") {
        const primary = buttons.find((button) => button.primary);
        if (primary) choose(primary.value);
        return true;
      }
      if (event.key === "Escape") {
        const cancel = buttons.find((button) => button.cancel);
        if (cancel) choose(cancel.value);
        return true;
      }
      return false;
    },
  };
}
