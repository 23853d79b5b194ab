// Lists of cards drawn incrementally (the board and the console): a card is built again
// only when its key (what it shows) changed; the others stay the same DOM nodes, so a
// focused button or an open panel in them survives a message about another call, and a
// message costs one card, not the whole board.

// A stable way back to the focused element inside a card that is being replaced: by its
// form field name, else its button text and rank among buttons with that text.
function locate(root, target) {
  if (target.name) return { name: target.name };
  const text = target.textContent;
  const same = [...root.querySelectorAll(target.tagName)].filter((n) => n.textContent === text);
  return { tag: target.tagName, text, rank: same.indexOf(target) };
}

function find(root, where) {
  if (where.name) return root.querySelector(`[name="${CSS.escape(where.name)}"]`);
  const same = [...root.querySelectorAll(where.tag)].filter((n) => n.textContent === where.text);
  return same[where.rank] || null;
}

// moveBefore keeps focus and state in a node moved within the page (Chromium 133+).
function place(parent, node, before) {
  if (parent.moveBefore && node.isConnected && parent.isConnected) {
    try { parent.moveBefore(node, before); return; } catch { /* insertBefore below */ }
  }
  parent.insertBefore(node, before);
}

export class KeyedList {
  constructor(parent) {
    this.parent = parent;
    this.kept = new Map();  // id -> { key, node }
    // The card a pointer is pressed on is not built again until it is released: a click
    // whose press and release land on two drawings of a button is no click at all (a
    // dispatcher's press on "Override…" as the call's recommendation arrived was lost).
    this.pressed = null;
    this.held = false;  // a drawing left the pressed card as it was
    this.latest = [];
    parent.addEventListener("pointerdown", (ev) => {
      const on = [...this.kept.values()].find((k) => k.node.contains(ev.target));
      this.pressed = on ? on.node : null;
    }, true);
    const release = () => {
      if (!this.pressed) return;
      this.pressed = null;
      if (!this.held) return;
      this.held = false;
      // After the click: the browser sends it in the same task as the release.
      setTimeout(() => this.draw(this.latest));
    };
    for (const type of ["pointerup", "pointercancel"]) {
      document.addEventListener(type, release, true);
    }
    window.addEventListener("blur", release);  // a release the page never hears of
  }

  // items: [{ id, key, build }] in the order shown. Builds what changed, drops what left,
  // and moves only the nodes out of place.
  draw(items) {
    this.latest = items;
    const focused = document.activeElement;
    let refocus = null;
    const nodes = [];
    const seen = new Set();
    for (const { id, key, build } of items) {
      seen.add(id);
      const have = this.kept.get(id);
      if (have && have.key === key) { nodes.push(have.node); continue; }
      if (have && have.node === this.pressed) {  // drawn again once released
        this.held = true;
        nodes.push(have.node);
        continue;
      }
      const node = build();
      if (have && focused && focused !== document.body && have.node.contains(focused)) {
        refocus = { node, where: locate(have.node, focused) };
      }
      if (have) have.node.remove();
      this.kept.set(id, { key, node });
      nodes.push(node);
    }
    for (const [id, have] of this.kept) {
      if (!seen.has(id)) { have.node.remove(); this.kept.delete(id); }
    }
    // Whatever else is in the list (drawn before this list kept it) goes too.
    const wanted = new Set(nodes);
    for (const child of [...this.parent.children]) if (!wanted.has(child)) child.remove();
    let at = this.parent.firstElementChild;
    for (const node of nodes) {
      if (node === at) { at = at.nextElementSibling; continue; }
      place(this.parent, node, at);
    }
    // The card in focus changed: focus the same control on its new card, if it has one
    // (never an element outside the card that held focus).
    if (refocus && refocus.node.isConnected) {
      const target = find(refocus.node, refocus.where);
      if (target && target.focus) target.focus({ preventScroll: true });
    }
  }
}
