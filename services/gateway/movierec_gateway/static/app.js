// The movierec page: plain JS against the gateway's public API, no build step.
"use strict";

const state = { userId: null, liked: [], seen: [], last: null };
const $ = (id) => document.getElementById(id);

function eventId() {
  return "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return data;
}

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

function selected(id) {
  return Array.from($(id).selectedOptions).map((o) => o.value);
}

function filters() {
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  return {
    genres_include: selected("genres-include"),
    genres_exclude: selected("genres-exclude"),
    year_min: number("year-min"),
    year_max: number("year-max"),
    min_avg_rating: number("min-rating"),
    exclude_watched: $("exclude-watched").checked,
  };
}

async function recommend() {
  showError(null);
  const body = { k: Number($("k").value) || 12, filters: filters() };
  if (state.userId) body.user_id = state.userId;
  else if (state.liked.length) {
    body.liked_movie_ids = state.liked.map((m) => m.movie_id);
    body.exclude_movie_ids = state.seen;
  } else {
    $("status").textContent = "Pick a user or like a few movies.";
    return;
  }
  try {
    const data = await api("POST", "/v1/recommendations", body);
    state.last = data;
    render(data);
  } catch (error) {
    showError(error);
  }
}

function render(data) {
  const who = data.user_id ? `user ${data.user_id}` : "you (new viewer)";
  const degraded = data.degraded ? ` <span class="badge" id="degraded">degraded: ${data.degraded_reason}</span>` : "";
  $("status").innerHTML =
    `${data.items.length} movies for ${who} · policy <b>${data.policy_version}</b> · model ${data.model_version || "none"}` +
    (data.cached ? " · cached" : "") + degraded;
  const cards = $("cards");
  cards.innerHTML = "";
  const slate = data.items.map((i) => i.movie_id);
  data.items.forEach((item, position) => cards.appendChild(card(item, position, slate, data.policy_version, data.decision_id)));
}

function card(item, position, slate, policyVersion, decisionId) {
  const el = document.createElement("div");
  el.className = "card";
  el.dataset.movieId = item.movie_id;
  const poster = item.poster_url
    ? `<img src="${item.poster_url}" alt="poster of ${escapeHtml(item.title)}" loading="lazy">`
    : `<div class="noposter">no poster</div>`;
  const avg = item.average_rating ? ` · ★ ${item.average_rating.toFixed(1)}` : "";
  el.innerHTML = `${poster}
    <div class="body">
      <div class="title">${escapeHtml(item.title)}</div>
      <div class="meta">${item.genres.join(", ")}${avg} · score ${item.score.toFixed(2)}</div>
      <div class="why">${escapeHtml(item.explanation.text)}</div>
      <div class="actions">
        <button class="small secondary" data-act="click">Details</button>
        <button class="small" data-act="watch">Watch</button>
        <select data-act="rate" aria-label="rate">
          <option value="">Rate…</option>
          ${[5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5, 1, 0.5].map((r) => `<option value="${r}">${r} ★</option>`).join("")}
        </select>
      </div>
    </div>`;
  const send = (kind, extra) => feedback(item, kind, extra, position, slate, policyVersion, decisionId, el);
  el.querySelector('[data-act="click"]').onclick = () => send("click", {});
  el.querySelector('[data-act="watch"]').onclick = () => send("watch", { watch_seconds: 45 * 60 });
  el.querySelector('[data-act="rate"]').onchange = (e) => e.target.value && send("rating", { rating: Number(e.target.value) });
  return el;
}

async function feedback(item, kind, extra, position, slate, policyVersion, decisionId, el) {
  showError(null);
  const changesList = kind !== "click";
  if (!state.userId) {
    // a new viewer has no account: remember locally and re-ask with the new likes
    if (changesList) state.seen.push(item.movie_id);
    if (kind === "rating" && extra.rating >= 4) addLike({ movie_id: item.movie_id, title: item.title });
    if (changesList) await recommend();
    return;
  }
  const event = {
    event_id: eventId(), user_id: state.userId, movie_id: item.movie_id, kind, slate, position,
    propensity: item.propensity || undefined, policy_version: policyVersion, decision_id: decisionId || undefined, ...extra,
  };
  try {
    await api("POST", "/v1/feedback", event);
    el.classList.add("done");
    if (changesList) await recommend();
  } catch (error) {
    showError(error);
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function addLike(movie) {
  if (!state.liked.some((m) => m.movie_id === movie.movie_id)) state.liked.push(movie);
  $("liked").innerHTML = state.liked.map((m) => `<span class="chip">${escapeHtml(m.title)}</span>`).join("");
}

async function search() {
  const q = $("search").value.trim();
  const list = $("search-results");
  list.innerHTML = "";
  if (!q) return;
  try {
    const data = await api("GET", `/v1/movies?q=${encodeURIComponent(q)}&limit=8`);
    for (const movie of data.items) {
      const li = document.createElement("li");
      li.innerHTML = `<span>${escapeHtml(movie.title)}</span><button class="small" data-like="${movie.movie_id}">Like</button>`;
      li.querySelector("button").onclick = () => addLike(movie);
      list.appendChild(li);
    }
  } catch (error) {
    showError(error);
  }
}

async function useUser() {
  showError(null);
  const id = Number($("user-id").value);
  try {
    const user = await api("GET", `/v1/users/${id}`);
    state.userId = id;
    $("user-info").textContent = `${user.rating_count} ratings; loves ${user.liked.slice(0, 3).map((m) => m.title).join(", ")}`;
    await recommend();
  } catch (error) {
    showError(error);
  }
}

async function init() {
  try {
    const genres = await api("GET", "/v1/genres");
    for (const id of ["genres-include", "genres-exclude"]) {
      $(id).innerHTML = genres.map((g) => `<option value="${g}">${g}</option>`).join("");
    }
  } catch (error) {
    showError(error);
  }
  $("use-user").onclick = useUser;
  $("use-new").onclick = () => { state.userId = null; recommend(); };
  $("refresh").onclick = recommend;
  let timer = null;
  $("search").oninput = () => { clearTimeout(timer); timer = setTimeout(search, 250); };
  // deep links: /?user=42 or /?liked=1,260,1196
  const params = new URLSearchParams(window.location.search);
  if (params.get("user")) {
    $("user-id").value = params.get("user");
    await useUser();
  } else if (params.get("liked")) {
    for (const id of params.get("liked").split(",").map(Number).filter(Boolean)) {
      try {
        addLike(await api("GET", `/v1/movies/${id}`));
      } catch (error) {
        showError(error);
      }
    }
    await recommend();
  }
}

init();
