// The Frappe desk globals find-by-photo.js uses, and nothing more: tsc checks the script against them
// (tsconfig.json here), and the browser test's stand-in implements exactly these. Signatures follow Frappe's
// own code (frappe/public/js/frappe: ui/dialog.js, ui/page.js, form/grid.js, form/form.js, model/model.js,
// list/list_view.js, router.js).

interface FrappeDialog {
  /** The dialog's `.modal-body` element. */
  body: HTMLElement;
  show(): void;
  hide(): void;
  on_hide?: () => void;
}

/** The jQuery object Frappe's grid returns for a custom button (only what the script calls). */
interface FrappeButton {
  toggleClass(className: string, state: boolean): FrappeButton;
}

interface FrappeChildRow {
  doctype: string;
  name: string;
  item_code?: string;
}

interface FrappeForm {
  doc: { doctype: string; name: string; docstatus: 0 | 1 | 2; items?: FrappeChildRow[] };
  fields_dict: Record<string, { grid?: { add_custom_button(label: string, click: () => void): FrappeButton } }>;
  add_child(fieldname: string, values?: Record<string, unknown>): FrappeChildRow;
  refresh_field(fieldname: string): void;
}

interface FrappeListView {
  page: { add_inner_button(label: string, action: () => void): unknown };
}

interface FrappeListSettings {
  onload?: (listview: FrappeListView) => void;
  /** Set by find-by-photo.js: these settings already have the button. */
  find_by_photo?: boolean;
  [key: string]: unknown;
}

declare const frappe: {
  ui: {
    Dialog: new (options: { title: string; size?: 'small' | 'large' | 'extra-large' }) => FrappeDialog;
    form: { on(doctype: string, handlers: { refresh(frm: FrappeForm): void }): void };
  };
  listview_settings: Record<string, FrappeListSettings>;
  model: { set_value(doctype: string, name: string, fieldname: string, value: unknown): Promise<unknown> };
  set_route(...route: string[]): unknown;
  msgprint(message: string): unknown;
};

/** Frappe's translation function. */
declare function __(text: string): string;

interface Window {
  /** DocTypes whose form already has the button (the script runs again whenever a DocType's meta loads). */
  findByPhotoInstalled?: { forms: string[] };
}
