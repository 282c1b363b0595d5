// Building the page's elements. Every text (item names and codes come from the catalog, i.e. from
// anyone who can write to it) goes in as a text node, never as HTML, so a name such as
// `<img src=x onerror=alert(1)>` shows literally and runs nothing. There is no innerHTML in this app.
type Child = Node | string | null | undefined | false;

interface Props {
  class?: string;
  attrs?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.class) element.className = props.class;
  for (const [name, value] of Object.entries(props.attrs ?? {})) element.setAttribute(name, value);
  for (const [type, listener] of Object.entries(props.on ?? {})) {
    element.addEventListener(type, listener as EventListener);
  }
  for (const child of children) if (child) element.append(child);
  return element;
}

/** The element with this id; the page's HTML is fixed, so a missing one is a bug worth failing on. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no #${id}.`);
  return element as T;
}

export function show(element: HTMLElement, visible: boolean): void {
  element.hidden = !visible;
}
