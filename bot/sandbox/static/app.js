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
function chatName(chat) { return isPrivate(chat) ? [chat.first_name, chat.last_name].filter(Boolean).join(" ") : chat.title; }
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
  } else if (event.type === "callback_answer" && event.text && state.current && state.current.chatId === chatId) {
    toast(event.text);
  }
}

async function poll() {
  for (;;) {
    try {
      const body = await api(`/_emu/events?after=${state.last}&timeout=25`);
      state.last = body.last;
      body.events.forEach(apply);
      if (body.events.some((e) => e.type === "topic" || e.type === "topic_deleted")) await loadChats();
      if (body.events.length) render();
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

function summary(message) {
  if (message.text) return message.text.slice(0, 60);
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
    box.appendChild(el("div", "from", from.is_bot ? "Petent" : [from.first_name, from.last_name].filter(Boolean).join(" ")));
  }
  if (m.reply_to_message) box.appendChild(el("div", "quote", summary(m.reply_to_message)));
  if (m.photo) {
    const img = document.createElement("img");
    img.src = fileUrl(m.photo[m.photo.length - 1].file_id);
    img.alt = "photo";
    box.appendChild(img);
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
  const meta = el("div", "meta", new Date(m.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + (m.edit_date ? " · edited" : ""));
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
  list.scrollTop = list.scrollHeight;  // after the keyboard took its room
}

function select(chatId, threadId) {
  state.current = { chatId, threadId: threadId || null };
  state.unread.delete(threadKey(chatId, threadId));
  state.replyTo = null;
  const chat = chatById(chatId);
  const topic = threadId && chat.topics.find((t) => t.message_thread_id === threadId);
  $("chat-title").textContent = topic ? `${chat.title} › ${topic.name}` : chatName(chat);
  $("acting").hidden = isPrivate(chat);
  if (!isPrivate(chat)) {
    const actor = $("actor");
    actor.replaceChildren(...chat.members.map((m) => { const o = el("option", "", chatName(m)); o.value = m.id; return o; }));
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
  sendBody(chat, { text });
});

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

loadChats().then(() => { poll(); const first = state.chats.find(isPrivate); if (first) select(first.id, null); });
