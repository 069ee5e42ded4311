// Petent sandbox: a small Telegram-like client for the local emulator. No external resources.
"use strict";

const state = {
  chats: [],
  messages: new Map(),   // chatId -> Map(messageId -> {message, outgoing})
  keyboards: new Map(),  // chatId -> reply keyboard markup (or null)
  reactions: new Map(),  // "chat:message" -> emoji
  unread: new Map(),     // "chat:thread" -> count
  last: 0,
  current: null,         // {chatId, threadId}
  actor: new Map(),      // chatId -> userId acting in a group
  replyTo: null,
  caughtUp: false,       // the history (events before the page opened) has been read
  timezone: undefined,   // the municipality's (TIMEZONE), as the bot's texts use it
  roles: {},             // chatId -> userId -> whom they play there (head, member, administrator…)
};

const $ = (id) => document.getElementById(id);
// The control API's token for this run, put in the page by the sandbox (bot/sandbox/control.py).
const TOKEN = document.querySelector('meta[name="emu-token"]').content;
const fileUrl = (fileId) => `/_emu/files/${encodeURIComponent(fileId)}?token=${encodeURIComponent(TOKEN)}`;

async function api(path, body, method) {
  const headers = { "X-Emulator-Token": TOKEN };
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: method || (body ? "POST" : "GET"),
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(await response.text());
  return response.json();
}

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 3500);
}

function chatById(id) { return state.chats.find((c) => c.id === id); }
function isPrivate(chat) { return chat && chat.type === "private"; }
function personName(user) { return [user.first_name, user.last_name].filter(Boolean).join(" "); }
function chatName(chat) { return isPrivate(chat) ? personName(chat) : chat.title; }
function roleIn(chatId, userId) { return (state.roles[chatId] || {})[userId]; }
function threadKey(chatId, threadId) { return `${chatId}:${threadId || 0}`; }

// --- events from the emulator --------------------------------------------------------------

function apply(event) {
  const chatId = event.chat_id;
  if (!state.messages.has(chatId)) state.messages.set(chatId, new Map());
  const messages = state.messages.get(chatId);
  if (event.type === "message" || event.type === "edit") {
    const previous = messages.get(event.message.message_id);
    messages.set(event.message.message_id, { message: event.message, outgoing: event.type === "edit" ? previous && previous.outgoing : event.outgoing });
    if (event.type === "message" && event.keyboard) {
      state.keyboards.set(chatId, event.keyboard.remove_keyboard ? null : event.keyboard);
    }
    if (event.type === "message" && event.outgoing) {
      const key = threadKey(chatId, event.message.message_thread_id);
      const current = state.current && threadKey(state.current.chatId, state.current.threadId);
      if (key !== current) state.unread.set(key, (state.unread.get(key) || 0) + 1);
    }
  } else if (event.type === "delete") {
    messages.delete(event.message_id);
  } else if (event.type === "reaction") {
    const emoji = (event.reaction[0] || {}).emoji || "";
    state.reactions.set(`${chatId}:${event.message_id}`, emoji);
  } else if (event.type === "callback_answer" && event.text && state.caughtUp && state.current && state.current.chatId === chatId) {
    toast(event.text);
  }
}

async function poll() {
  for (;;) {
    try {
      const body = await api(`/_emu/events?after=${state.last}&timeout=25`);
      state.last = body.last;
      body.events.forEach(apply);
      state.caughtUp = true;  // from now on, events happen now: a button's answer shows as a toast, not the history's
      if (body.events.some((e) => e.type === "topic" || e.type === "topic_deleted")) await loadChats();
      // The open chat is drawn again only when it changed: a redraw replaces its buttons, and a
      // click landing on one being replaced is lost (another chat's events only touch the list).
      const open = state.current && state.current.chatId;
      if (body.events.some((e) => e.chat_id === open)) render();
      else if (body.events.length) renderChats();
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function loadChats() {
  state.chats = await api("/_emu/chats");
  renderChats();
}

// --- rendering -----------------------------------------------------------------------------

const ENTITY_TAGS = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre", blockquote: "blockquote", expandable_blockquote: "blockquote" };

function renderText(text, entities) {
  // Telegram's offsets are in UTF-16 code units, as JavaScript strings are.
  const fragment = document.createDocumentFragment();
  const cuts = new Set([0, text.length]);
  (entities || []).forEach((e) => { cuts.add(e.offset); cuts.add(e.offset + e.length); });
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i < points.length - 1; i++) {
    const [start, end] = [points[i], points[i + 1]];
    let node = document.createTextNode(text.slice(start, end));
    (entities || []).filter((e) => e.offset <= start && e.offset + e.length >= end).forEach((e) => {
      let wrapper;
      if (e.type === "text_link" && /^https?:\/\//.test(e.url)) {
        wrapper = document.createElement("a");
        wrapper.href = e.url; wrapper.target = "_blank"; wrapper.rel = "noopener";
      } else if (e.type === "spoiler") {
        wrapper = document.createElement("span"); wrapper.className = "spoiler";
      } else if (ENTITY_TAGS[e.type]) {
        wrapper = document.createElement(ENTITY_TAGS[e.type]);
      }
      if (wrapper) { wrapper.appendChild(node); node = wrapper; }
    });
    fragment.appendChild(node);
  }
  return fragment;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const QUOTE_CHARS = 60;

function summary(message) {
  if (message.text) return message.text.length > QUOTE_CHARS ? message.text.slice(0, QUOTE_CHARS - 1).trimEnd() + "…" : message.text;
  if (message.photo) return "🖼 " + (message.caption || "");
  if (message.document) return "📄 " + (message.document.file_name || "");
  if (message.location) return "📍";
  return "…";
}

function renderMessage(chat, entry) {
  const m = entry.message;
  if (m.forum_topic_created) {
    return el("div", "msg service", `Topic created: ${m.forum_topic_created.name}`);
  }
  const box = el("div", "msg" + (entry.outgoing ? "" : " mine"));
  box.dataset.messageId = m.message_id;
  if (!isPrivate(chat) || !entry.outgoing) {
    const from = m.from || {};
    box.appendChild(el("div", "from", from.is_bot ? "Petent" : personName(from)));
  }
  if (m.reply_to_message) box.appendChild(el("div", "quote", summary(m.reply_to_message)));
  if (m.photo) {
    // The largest size, opened full size in a new tab; the list keeps its bottom once it has loaded.
    const link = el("a", "photo");
    link.href = fileUrl(m.photo[m.photo.length - 1].file_id);
    link.target = "_blank"; link.rel = "noopener"; link.title = "Open full size";
    const img = document.createElement("img");
    img.src = link.href;
    img.alt = m.caption ? `photo: ${m.caption}` : "photo";
    img.addEventListener("load", scrollToBottom);
    link.appendChild(img);
    box.appendChild(link);
  }
  if (m.document) {
    const link = el("a", "doc", `📄 ${m.document.file_name || "document"}`);
    link.href = fileUrl(m.document.file_id);
    link.download = m.document.file_name || "document";
    box.appendChild(link);
  }
  if (m.location) box.appendChild(el("div", "loc", `📍 ${m.location.latitude.toFixed(5)}, ${m.location.longitude.toFixed(5)}`));
  if (m.contact) box.appendChild(el("div", "doc", `📞 ${m.contact.phone_number}`));
  if (m.sticker) box.appendChild(el("div", "", m.sticker.emoji || "🏷"));
  if (m.poll) {
    const poll = el("div", "poll", `📊 ${m.poll.question}`);
    m.poll.options.forEach((o) => poll.appendChild(el("div", "", `○ ${o.text}`)));
    box.appendChild(poll);
  }
  const body = el("div", "body");
  if (m.text) body.appendChild(renderText(m.text, m.entities));
  else if (m.caption) body.appendChild(renderText(m.caption, m.caption_entities));
  box.appendChild(body);
  const keyboard = m.reply_markup && m.reply_markup.inline_keyboard;
  if (keyboard && keyboard.length) {
    const grid = el("div", "inline-kb");
    keyboard.forEach((row) => {
      const line = el("div", "row");
      row.forEach((button) => {
        const b = el("button", "", button.text);
        b.type = "button";
        b.addEventListener("click", () => press(chat, m, button));
        line.appendChild(b);
      });
      grid.appendChild(line);
    });
    box.appendChild(grid);
  }
  const meta = el("div", "meta", clockTime(m.date) + (m.edit_date ? " · edited" : ""));
  const reaction = state.reactions.get(`${chat.id}:${m.message_id}`);
  if (reaction) meta.appendChild(el("span", "reaction", reaction));
  if (!isPrivate(chat)) {
    const reply = el("button", "reply-link", "↩ reply");
    reply.type = "button";
    reply.addEventListener("click", () => { state.replyTo = m; renderReplyBar(); $("text").focus(); });
    meta.appendChild(reply);
  }
  box.appendChild(meta);
  return box;
}

function clockTime(seconds) {
  // In the municipality's time zone, the one the bot's own texts (deadlines, reports) use.
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: state.timezone });
}

function scrollToBottom() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

function renderChats() {
  const nav = $("chats");
  nav.replaceChildren();
  const sections = [["Residents", state.chats.filter(isPrivate).filter((c) => !isStaff(c))], ["Groups", state.chats.filter((c) => !isPrivate(c))]];
  for (const [title, chats] of sections) {
    nav.appendChild(el("div", "section", title));
    for (const chat of chats) {
      nav.appendChild(chatButton(chat, null, chatName(chat), isPrivate(chat) ? "resident" : (chat.is_forum ? "forum · General" : "group")));
      if (chat.is_forum) {
        for (const topic of chat.topics) nav.appendChild(chatButton(chat, topic.message_thread_id, topic.name, "topic", true));
      }
    }
  }
}

function isStaff(chat) {
  // People who are members of a group are staff in the sandbox; they are listed with the groups.
  return state.chats.some((g) => !isPrivate(g) && g.members.some((m) => m.id === chat.id));
}

function chatButton(chat, threadId, name, sub, isTopic) {
  const button = el("button", "chat-item" + (isTopic ? " topic" : ""));
  button.type = "button";
  const active = state.current && state.current.chatId === chat.id && (state.current.threadId || null) === (threadId || null);
  if (active) button.classList.add("active");
  const unread = state.unread.get(threadKey(chat.id, threadId));
  if (unread) button.appendChild(el("span", "unread", String(unread)));
  button.appendChild(el("div", "name", (isTopic ? "# " : "") + name));
  button.appendChild(el("div", "sub", sub));
  button.addEventListener("click", () => select(chat.id, threadId));
  return button;
}

function renderReplyBar() {
  $("reply-bar").hidden = !state.replyTo;
  if (state.replyTo) $("reply-to-text").textContent = summary(state.replyTo);
}

function render() {
  renderChats();
  const list = $("messages");
  const chat = state.current && chatById(state.current.chatId);
  list.replaceChildren();
  $("keyboard").replaceChildren();
  if (!chat) return;
  const threadId = state.current.threadId || null;
  const entries = [...(state.messages.get(chat.id) || new Map()).values()]
    .filter((e) => !chat.is_forum || (e.message.message_thread_id || null) === threadId)
    .sort((a, b) => a.message.message_id - b.message.message_id);
  entries.forEach((entry) => list.appendChild(renderMessage(chat, entry)));
  const keyboard = isPrivate(chat) && state.keyboards.get(chat.id);
  if (keyboard) {
    keyboard.keyboard.forEach((row) => {
      const line = el("div", "row");
      row.forEach((button) => {
        const b = el("button", "", typeof button === "string" ? button : button.text);
        b.type = "button";
        b.addEventListener("click", () => replyKey(chat, button));
        line.appendChild(b);
      });
      $("keyboard").appendChild(line);
    });
  }
  scrollToBottom();  // after the keyboard took its room (and again as each photo loads)
}

function select(chatId, threadId) {
  state.current = { chatId, threadId: threadId || null };
  state.unread.delete(threadKey(chatId, threadId));
  state.replyTo = null;
  document.body.classList.remove("chats-open");
  const chat = chatById(chatId);
  const topic = threadId && chat.topics.find((t) => t.message_thread_id === threadId);
  $("chat-title").textContent = topic ? `${chat.title} › ${topic.name}` : chatName(chat);
  $("acting").hidden = isPrivate(chat);
  if (!isPrivate(chat)) {
    const actor = $("actor");
    actor.replaceChildren(...chat.members.map((m) => {
      const role = roleIn(chatId, m.id);
      const o = el("option", "", role ? `${personName(m)} · ${role}` : personName(m));
      o.value = m.id;
      return o;
    }));
    actor.value = state.actor.get(chatId) || (chat.members[0] && chat.members[0].id);
  }
  $("text").disabled = false;
  $("send").disabled = false;
  renderReplyBar();
  render();
  $("text").focus();
}

function actingUser(chat) {
  return isPrivate(chat) ? chat.id : Number($("actor").value);
}

// --- acting --------------------------------------------------------------------------------

async function sendBody(chat, body) {
  const payload = { user_id: actingUser(chat), chat_id: chat.id, ...body };
  if (state.current.threadId) payload.thread_id = state.current.threadId;
  if (state.replyTo) payload.reply_to = state.replyTo.message_id;
  state.replyTo = null;
  renderReplyBar();
  try { await api("/_emu/messages", payload); } catch (error) { toast(String(error.message || error)); }
}

async function press(chat, message, button) {
  if (button.url) { window.open(button.url, "_blank", "noopener"); return; }
  try {
    await api("/_emu/click", { user_id: actingUser(chat), chat_id: chat.id, message_id: message.message_id, text: button.text });
  } catch (error) { toast(String(error.message || error)); }
}

function replyKey(chat, button) {
  if (typeof button === "string") return sendBody(chat, { text: button });
  if (button.request_contact) return sendBody(chat, { contact: "+3706" + String(1000000 + chat.id % 9000000).slice(0, 7) });
  if (button.request_location) return sendBody(chat, { location: [54.6872 + Math.random() / 50, 25.2797 + Math.random() / 50] });
  return sendBody(chat, { text: button.text });
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const chat = state.current && chatById(state.current.chatId);
  const text = $("text").value;
  if (!chat || !text.trim()) return;
  $("text").value = "";
  fitText();
  sendBody(chat, { text });
});

// Enter sends, Shift+Enter breaks the line (as in Telegram); the box grows with its lines.
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
function fitText() {
  const box = $("text");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight + 2, 180)}px`;
}
$("text").addEventListener("input", fitText);
$("show-chats").addEventListener("click", () => document.body.classList.toggle("chats-open"));

$("file").addEventListener("change", () => {
  const chat = state.current && chatById(state.current.chatId);
  const file = $("file").files[0];
  if (!chat || !file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const data = String(reader.result).split(",")[1];
    const kind = file.type.startsWith("image/") ? "photo" : "document";
    const caption = $("text").value || undefined;
    $("text").value = "";
    fitText();
    sendBody(chat, { files: [{ kind, data, name: file.name, mime: file.type || "application/octet-stream", caption }] });
  };
  reader.readAsDataURL(file);
  $("file").value = "";
});

$("actor").addEventListener("change", () => state.actor.set(state.current.chatId, Number($("actor").value)));
$("reply-cancel").addEventListener("click", () => { state.replyTo = null; renderReplyBar(); });

$("add-resident").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("new-name").value.trim();
  if (!name) return;
  const user = await api("/_emu/users", { first_name: name, language_code: $("new-language").value });
  $("new-name").value = "";
  await loadChats();
  select(user.id, null);
});

async function start() {
  const about = await api("/_sandbox/about");
  state.timezone = about.timezone;
  state.roles = about.roles;
  $("timezone").textContent = `times in ${about.timezone}`;
  await loadChats();
  poll();
  const first = state.chats.find(isPrivate);
  if (first) select(first.id, null);
}

start();
