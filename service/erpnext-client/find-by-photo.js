// "Find by photo" in ERPNext's desk: a Frappe Client Script (pasted into ERPNext, not run by this service). It
// adds a button to the Item list (the chosen match opens the Item) and to the items table of the forms in
// FIND_BY_PHOTO_FORMS (the chosen match fills a row's item_code). The photo comes from the camera or a file,
// is shrunk in the browser, sent to POST /search with the read-only key, and the matches are shown with their
// thumbnails, names and codes. Installation: README, section "ERPNext" (one Client Script per DocType, the same
// code in each, with the two settings below filled in).
// It is run by Frappe with `new Function(script)()`, possibly more than once per page (every time a DocType's
// meta loads), so it installs itself at most once per target, and it uses only the Frappe APIs declared in
// frappe.d.ts beside it (the browser test's stand-in implements exactly those).

(() => {
  // ---- the two settings -------------------------------------------------------------------------------------
  /** The image search API as the clerks' browsers reach it (the stack output ApiUrl), without a trailing slash. */
  const IMAGE_SEARCH_URL = 'https://image-search.example.com';
  /** IMAGE_SEARCH_READ_KEY of the service: it can only search and read, so it may sit in a browser script. */
  const IMAGE_SEARCH_READ_KEY = 'paste-the-read-key-here';
  /** Forms whose `items` table gets the button; each also needs this script as a Client Script (Apply To: Form). */
  const FIND_BY_PHOTO_FORMS = ['Sales Invoice', 'POS Invoice'];
  // -------------------------------------------------------------------------------------------------------------

  const LABEL = 'Find by photo';
  /** Items shown per search. */
  const TOP_K = 5;
  /** Photos are shrunk to this long side before upload (a phone's 12 MP photo is 3-8 MB; this is ~300 KB). */
  const MAX_SIDE = 1600;
  const THUMBNAIL_SIZE = 128;
  /** Where a match's picture comes from: the one place to change it. */
  const thumbnailPath = (/** @type {string} */ imageId) =>
    `/images/${encodeURIComponent(imageId)}/thumbnail?size=${THUMBNAIL_SIZE}`;
  const VERDICTS = {
    confident: 'Best match first.',
    uncertain: 'Not sure: check the pictures.',
    none: 'Nothing in the catalog looks like this photo. The closest items:',
  };

  /**
   * A request to the image search API with the read key; an answer other than 2xx throws its message.
   * @param {string} path
   * @param {RequestInit} [init]
   */
  async function call(path, init = {}) {
    let response;
    try {
      response = await fetch(IMAGE_SEARCH_URL.replace(/\/+$/, '') + path, {
        ...init,
        headers: { 'Image-Search-Api-Key': IMAGE_SEARCH_READ_KEY },
        credentials: 'omit',
      });
    } catch {
      throw new Error(
        `The image search at ${IMAGE_SEARCH_URL} cannot be reached (is it up, and is this site's origin in its ` +
          'CORS_ORIGINS?).',
      );
    }
    if (response.ok) return response;
    /** @type {{ message?: string }} */
    let body = {};
    try {
      body = await response.json();
    } catch {
      // not JSON: the status says enough
    }
    throw new Error(body.message ?? `The image search answered HTTP ${response.status}.`);
  }

  /**
   * The photo as a JPEG whose long side is at most MAX_SIDE, upright; the file itself when it is small enough
   * or the browser cannot decode it (the service then decodes it, or says why not).
   * @param {File} file
   * @returns {Promise<Blob>}
   */
  async function shrink(file) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
    } catch {
      return file;
    }
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size < 2_000_000) {
      bitmap.close();
      return file;
    }
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob ?? file), 'image/jpeg', 0.9));
  }

  /**
   * An element with a class and text (text only: names come from the catalog and are never parsed as HTML).
   * @template {keyof HTMLElementTagNameMap} K
   * @param {K} tag
   * @param {string} [className]
   * @param {string} [text]
   */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** @typedef {{ item_id: string, item_name?: string, item_code?: string, item_group?: string,
   *   image_id: string, confidence: number }} Match */

  /**
   * The dialog, made once per page and shown again for every button (Frappe keeps dialogs in the page); the
   * function it returns opens it, `choose` getting the match the user picks.
   */
  function makeDialog() {
    /** @type {(match: Match) => unknown} */
    let choose = () => undefined;
    const dialog = new frappe.ui.Dialog({ title: __(LABEL), size: 'large' });
    const root = el('div', 'find-by-photo');
    const pickers = el('div', 'find-by-photo-pickers');
    /** @type {string[]} */
    const objectUrls = [];
    let searches = 0;

    /** @param {string} label @param {boolean} camera */
    const picker = (label, camera) => {
      const input = el('input');
      input.type = 'file';
      input.accept = 'image/*';
      if (camera) input.setAttribute('capture', 'environment'); // phones open the back camera; desktops a picker
      input.hidden = true;
      input.addEventListener('change', () => {
        const file = input.files?.[0];
        input.value = '';
        if (file) void search(file);
      });
      const button = el('button', `btn btn-sm ${camera ? 'btn-primary' : 'btn-default'}`, __(label));
      button.type = 'button';
      button.addEventListener('click', () => input.click());
      pickers.append(button, input);
    };
    const initial = __('Take or choose a photo of the item.');
    picker('Take a photo', true);
    picker('Choose a file', false);
    const status = el('p', 'find-by-photo-status text-muted');
    status.setAttribute('role', 'status');
    status.textContent = initial;
    const list = el('ul', 'find-by-photo-results list-unstyled');
    root.append(pickers, status, list);
    dialog.body.append(root);
    dialog.on_hide = () => {
      searches++; // an answer still on its way is not shown next time
      list.replaceChildren();
      status.textContent = initial;
      objectUrls.splice(0).forEach((url) => URL.revokeObjectURL(url));
    };

    /** @param {File} file */
    async function search(file) {
      const mine = ++searches; // a later photo wins over an answer still on its way
      list.replaceChildren();
      status.textContent = __('Searching…');
      try {
        const form = new FormData();
        form.append('top_k', String(TOP_K));
        form.append('file', await shrink(file), file.name || 'photo.jpg');
        /** @type {{ match: keyof typeof VERDICTS, results: Match[] }} */
        const answer = await (await call('/search', { method: 'POST', body: form })).json();
        if (mine !== searches) return;
        status.textContent = answer.results.length === 0 ? __('The catalog is empty.') : __(VERDICTS[answer.match]);
        list.append(...answer.results.map((match) => row(match)));
      } catch (error) {
        if (mine === searches) status.textContent = /** @type {Error} */ (error).message;
      }
    }

    /** @param {Match} match */
    function row(match) {
      const item = el('li', 'find-by-photo-result');
      const button = el('button', 'btn btn-default btn-block');
      button.type = 'button';
      button.dataset.itemId = match.item_id;
      const img = el('img', 'find-by-photo-thumbnail');
      img.alt = match.item_name ?? match.item_id;
      img.width = img.height = 64;
      void thumbnail(img, match.image_id);
      const text = el('span', 'find-by-photo-text');
      text.append(
        el('strong', 'find-by-photo-name', match.item_name ?? match.item_id),
        el('span', 'find-by-photo-code', match.item_code ?? match.item_id),
        el('span', 'find-by-photo-confidence', `${Math.round(match.confidence * 100)} %`),
      );
      button.append(img, text);
      button.addEventListener('click', () => {
        dialog.hide();
        void Promise.resolve(choose(match)).catch(/** @param {Error} e */ (e) => frappe.msgprint(e.message));
      });
      item.append(button);
      return item;
    }

    /**
     * An <img> cannot send the key header: the thumbnail is fetched with it and shown from a blob: URL. Without
     * one (older service, image gone) the row keeps the name and code, and the img its alt text.
     * @param {HTMLImageElement} img @param {string} imageId
     */
    async function thumbnail(img, imageId) {
      try {
        const url = URL.createObjectURL(await (await call(thumbnailPath(imageId))).blob());
        objectUrls.push(url);
        img.src = url;
      } catch {
        img.classList.add('find-by-photo-missing');
      }
    }

    return (/** @type {(match: Match) => unknown} */ next) => {
      choose = next;
      dialog.show();
    };
  }

  /** @type {ReturnType<typeof makeDialog> | undefined} */
  let dialogOpener;
  const openDialog = (/** @type {(match: Match) => unknown} */ choose) => (dialogOpener ??= makeDialog())(choose);

  /**
   * Puts the item into the form's first row without an item code, or a new row; set_value runs ERPNext's own
   * item_code trigger (price, UOM, stock), as when a clerk types the code.
   * @param {FrappeForm} frm @param {string} itemId
   */
  async function fillRow(frm, itemId) {
    const row = (frm.doc.items ?? []).find((r) => !r.item_code) ?? frm.add_child('items');
    await frappe.model.set_value(row.doctype, row.name, 'item_code', itemId);
    frm.refresh_field('items');
  }

  /** @type {{ forms: string[] }} */
  const installed = (window.findByPhotoInstalled ??= { forms: [] });

  // The Item list: ERPNext's own list settings (item_list.js, run just before this script) keep their onload.
  const settings = (frappe.listview_settings.Item ??= {});
  if (!settings.find_by_photo) {
    const previous = settings.onload;
    settings.find_by_photo = true;
    settings.onload = function (listview) {
      previous?.call(this, listview);
      listview.page.add_inner_button(__(LABEL), () =>
        openDialog((match) => frappe.set_route('Form', 'Item', match.item_id)),
      );
    };
  }

  // The forms: Frappe keeps one form (frm) per DocType and shows each document in it, so the button is added
  // once and looks at the document shown when it is clicked; it is hidden on submitted and cancelled ones.
  for (const doctype of FIND_BY_PHOTO_FORMS) {
    if (installed.forms.includes(doctype)) continue;
    installed.forms.push(doctype);
    frappe.ui.form.on(doctype, {
      refresh(frm) {
        const grid = frm.fields_dict.items?.grid;
        if (!grid) return;
        grid
          .add_custom_button(__(LABEL), () => {
            if (frm.doc.docstatus === 0) openDialog((match) => fillRow(frm, match.item_id));
          })
          .toggleClass('hidden', frm.doc.docstatus !== 0);
      },
    });
  }
})();
