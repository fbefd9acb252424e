const $ = id => document.getElementById(id);
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const short = id => id ? esc(id.slice(0, 12)) + '…' : '<span class=muted>none</span>';
const bytes = n => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB';
const span = ms => ms < 1000 ? ms + ' ms' : ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms / 60000) + ' min';
// Replaces an element's content only when it changed, so a refresh does not
// swap a button out from under a click.
function put(el, html) {
  if (el.dataset.html !== html) { el.innerHTML = html; el.dataset.html = html; }
}
function rows(id, header, items, cells) {
  put($(id), '<tr>' + header.map(h => '<th>' + h + '</th>').join('') + '</tr>' +
    items.map(x => '<tr>' + cells(x).map(c => '<td>' + c + '</td>').join('') + '</tr>').join(''));
}
async function api(path, init) {
  const r = await fetch(path, init);
  $('login').hidden = r.status !== 401;
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}

// Every device this node knows of, by device id: found now (discovery),
// verified once (trust store), paired (keys kept on both sides).
let known = new Map();
function merge(found, trusted, paired) {
  const m = new Map();
  const get = id => m.get(id) || (m.set(id, { id, name: '', ip: '', found: false, verified: false, paired: false }), m.get(id));
  trusted.forEach(t => Object.assign(get(t.device_id), { name: t.name, ip: t.ip, verified: true, last_seen: t.last_seen }));
  paired.forEach(p => Object.assign(get(p.device_id), { paired: true, paired_at: p.paired_at, claimed: p.id === 'claimed' }));
  found.forEach(f => Object.assign(get(f.device_id), { name: f.name, ip: f.ip, found: true, type: f.device_type, auth_port: f.auth_port, capabilities: f.capabilities }));
  m.forEach(d => { d.state = d.paired ? 'paired' : d.verified ? 'verified' : 'found'; });
  return m;
}
const nameOf = id => id === 'web' ? 'browsers (web token)' : (known.get(id)?.name || (id ? id.slice(0, 12) + '…' : '?'));
// A padlock (drawn: no emoji font needed) centred on x, y.
const lock = (x, y, c) => `<path d="M${x - 4} ${y - 1} v-3 a4 4 0 0 1 8 0 v3" fill="none" stroke="${c}" stroke-width="1.8"/>` +
  `<rect x="${x - 6}" y="${y - 1}" width="12" height="9" rx="1.5" fill="${c}"/>`;
function drawPicture(me) {
  const list = [...known.values()];
  const cx = 180, cy = 150, r = list.length > 1 ? 105 : 95;
  let s = '';
  list.forEach((d, i) => {
    const a = -Math.PI / 2 + 2 * Math.PI * i / Math.max(list.length, 1);
    const x = cx + r * Math.cos(a), y = cy + r * Math.sin(a);
    d.x = x; d.y = y;
    s += `<line x1="${cx}" y1="${cy}" x2="${x}" y2="${y}" stroke="var(--${d.state})" stroke-width="${d.paired ? 3 : 1.5}" ${d.found ? '' : 'stroke-dasharray="2 5"'}/>`;
  });
  s += `<circle cx="${cx}" cy="${cy}" r="24" fill="#222"/><text x="${cx}" y="${cy + 4}" fill="#fff" text-anchor="middle">${esc(me.slice(0, 8))}</text>`;
  s += `<text class="label" x="${cx}" y="${cy + 40}" text-anchor="middle" fill="#888">this node</text>`;
  list.forEach(d => {
    s += `<g class="dev" data-id="${esc(d.id)}" data-state="${d.state}" data-found="${d.found}"><title>${esc(d.name)} ${esc(d.id)}</title>` +
      `<circle cx="${d.x}" cy="${d.y}" r="18" fill="${d.found ? 'var(--' + d.state + ')' : '#fff'}" stroke="var(--${d.state})" stroke-width="2"/>` +
      `<text class="label" x="${d.x}" y="${d.y + 32}" text-anchor="middle">${esc(d.name || d.id.slice(0, 8))}</text>` +
      (d.paired ? lock(d.x, d.y, d.found ? '#fff' : 'var(--paired)')
        : `<text x="${d.x}" y="${d.y + 4}" text-anchor="middle" fill="${d.found ? '#fff' : 'var(--' + d.state + ')'}">${d.verified ? '✓' : '?'}</text>`) + '</g>';
  });
  if (!list.length) s += `<text x="${cx}" y="40" text-anchor="middle" class="muted" fill="#888">no devices yet: look for some</text>`;
  put($('picture'), s);
  rows('devices', ['name', 'state', 'ip', 'device id', ''], list, d => [
    esc(d.name), `<span class="state ${d.state}">${d.state}</span>${d.claimed ? ' <span class=muted title="its id is not derived from its key: another device may have used it">id claimed</span>' : ''}${d.found ? '' : ' <span class=muted>not seen now</span>'}`,
    esc(d.ip), short(d.id),
    d.paired ? `<button data-unpair="${esc(d.id)}">Unpair</button>`
      : d.found && d.auth_port ? `<button data-pair="${esc(d.id)}">Pair…</button>` : '']);
}

// Traffic per peer: bytes each second, from the sessions' counters (open ones,
// and what closed ones carried since the last look). Two minutes are kept.
const SAMPLES = 60, series = new Map(), seen = new Map(), counted = new Set();
let lastSample = 0;
function sample(open, closed) {
  const now = Date.now(), first = lastSample === 0, secs = (now - lastSample) / 1000;
  const add = new Map();
  const take = (x, total) => {
    const before = seen.get(x.session_id) ?? (first ? total : 0);
    add.set(x.peer_device_id, (add.get(x.peer_device_id) || 0) + Math.max(0, total - before));
  };
  open.forEach(x => { const t = x.bytes_in + x.bytes_out; take(x, t); seen.set(x.session_id, t); });
  closed.forEach(x => {
    if (counted.has(x.session_id)) return;
    counted.add(x.session_id);
    if (!first) take(x, x.bytes_in + x.bytes_out);
    seen.delete(x.session_id);
  });
  // Only what the lists still hold is remembered (a page open for weeks stays small).
  const openIds = new Set(open.map(x => x.session_id)), closedIds = new Set(closed.map(x => x.session_id));
  seen.forEach((_, id) => { if (!openIds.has(id)) seen.delete(id); });
  counted.forEach(id => { if (!closedIds.has(id)) counted.delete(id); });
  lastSample = now;
  if (first) return;
  add.forEach((_, p) => { if (!series.has(p)) series.set(p, []); });
  series.forEach((v, p) => { v.push((add.get(p) || 0) / secs); if (v.length > SAMPLES) v.shift(); });
  series.forEach((v, p) => { if (v.every(b => b === 0)) series.delete(p); });
  // Kept for a reload of this tab (only this tab: sessionStorage).
  try { sessionStorage.setItem('traffic', JSON.stringify({ at: now, series: [...series] })); } catch (e) {}
  drawTraffic();
}
// After a reload the chart goes on from where it was, if that was just now.
try {
  const kept = JSON.parse(sessionStorage.getItem('traffic') || 'null');
  if (kept && Date.now() - kept.at < 10000) kept.series.forEach(([p, v]) => series.set(p, v.slice(-SAMPLES)));
} catch (e) {}
const COLORS = ['#2f6fd6', '#1f9d55', '#d6542f', '#8e44ad', '#c29b00', '#16a2b8'];
function drawTraffic() {
  const W = 600, H = 160, L = 50, T = 10, B = 20;
  const peak = Math.max(1, ...[...series.values()].flat());
  let s = `<line x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}" stroke="#bbb"/><text x="2" y="${H - B}">0</text>`;
  if (series.size) s += `<text x="2" y="${T + 10}">${bytes(Math.round(peak))}/s</text>`;
  s += `<text x="${L}" y="${H - 4}" fill="#888">2 min ago</text><text x="${W - 30}" y="${H - 4}" fill="#888">now</text>`;
  let i = 0;
  series.forEach((v, p) => {
    const c = COLORS[i % COLORS.length];
    const pts = v.map((b, k) => `${(L + (W - L) * (k + SAMPLES - v.length) / (SAMPLES - 1)).toFixed(1)},${(H - B - (H - B - T) * b / peak).toFixed(1)}`).join(' ');
    s += `<polyline class="peer" data-peer="${esc(p)}" points="${pts}" fill="none" stroke="${c}" stroke-width="2"/>`;
    s += `<text x="${L + 10 + 150 * i}" y="${T + 10}" fill="${c}">${esc(nameOf(p))}: ${bytes(Math.round(v[v.length - 1]))}/s</text>`;
    i++;
  });
  if (!series.size) s += `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no traffic in the last two minutes</text>`;
  $('traffic').innerHTML = s;
}

// `tick`: the two-second timer's refresh, the one that samples traffic.
async function refresh(tick) {
  try {
    const d = await api('/api/device');
    $('name').textContent = d.name;
    put($('device'),
      `<tr><th>device id</th><td><code>${esc(d.device_id)}</code></td></tr>` +
      `<tr><th>address</th><td>${esc(d.ip)} (discovery ${d.discovery_port}, auth ${d.auth_port}, session ${d.session_port}, WebRTC ${d.rtc_port})</td></tr>`);
    const [found, trusted, paired] = await Promise.all([api('/api/devices'), api('/api/trusted'), api('/api/paired')]);
    known = merge(found, trusted, paired);
    drawPicture(d.name);
    const when = t => t ? new Date(t * 1000).toLocaleString() : '';
    rows('trusted', ['name', 'device id', 'ip', 'first seen', 'last seen'], trusted,
      x => [esc(x.name), short(x.device_id), esc(x.ip), when(x.first_seen), when(x.last_seen)]);
    const [ss, closed, names] = await Promise.all([api('/api/sessions'), api('/api/sessions/closed'), api('/api/servers')]);
    if (tick) sample(ss, closed);
    // Each session server with its open sessions under it (and sessions to
    // servers elsewhere, under their names).
    const groups = names.map(n => [n, ss.filter(x => x.session === n)]);
    ss.filter(x => !names.includes(x.session)).forEach(x => {
      const g = groups.find(([n]) => n === x.session);
      if (g) g[1].push(x); else groups.push([x.session, [x]]);
    });
    const lines = groups.flatMap(([n, list]) => list.length
      ? list.map((x, i) => ({ server: i ? '' : `<b>${esc(n)}</b>`, x }))
      : [{ server: `<b>${esc(n)}</b>`, x: null }]);
    rows('sessions', ['session server', 'id', 'peer', 'from', 'transport', 'auth', 'in', 'out', 'age'], lines,
      ({ server, x }) => x ? [server, x.session_id, esc(nameOf(x.peer_device_id)), esc(x.peer), esc(x.transport), esc(x.auth) + (x.id === 'claimed' ? ' <span class=muted title="the peer said this id; it did not prove it">(id claimed)</span>' : ''),
            bytes(x.bytes_in), bytes(x.bytes_out), x.opened_at_ms ? span(Date.now() - x.opened_at_ms) : '']
        : [server, '<span class=muted>no open sessions</span>', '', '', '', '', '', '', '']);
    rows('closed', ['id', 'session', 'peer', 'transport', 'in', 'out', 'lasted', 'ended'], closed.slice().reverse(),
      x => [x.session_id, esc(x.session), esc(nameOf(x.peer_device_id)), esc(x.transport), bytes(x.bytes_in), bytes(x.bytes_out),
            span(x.closed_at_ms - x.opened_at_ms), esc(new Date(x.closed_at_ms).toLocaleTimeString() + ': ' + x.reason)]);
    const st = await api('/api/streams');
    rows('streams', ['stream', 'publisher', 'tracks', 'viewers', 'received', ''], st,
      x => [esc(x.stream), x.live ? 'live' : '<span class=muted>waiting for it to return</span>', esc(x.tracks.join(' + ')),
            x.viewers.length, (x.bytes_in / 1e6).toFixed(1) + ' MB', `<button data-play="${esc(x.stream)}">Play</button>`]);
  } catch (e) { /* node restarting */ }
}

// A refresh in a moment: calls while one is pending add nothing.
let pending = null;
function soon() {
  if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 500);
}

// Discovery, pairing and unpairing from the page.
$('discover').onclick = async () => {
  const t = $('target').value.trim();
  const r = await fetch('/api/discover', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ targets: t ? [t] : [] }) });
  $('discover-result').textContent = r.ok ? 'asked' + (t ? ' the network and ' + t : ' the network') + '; answers appear above'
    : 'could not ask: ' + await r.text();
  soon();
};
let pairing = null;
function askPin(id) {
  pairing = id;
  $('pair-name').textContent = nameOf(id);
  $('pin').value = '';
  $('pair-dialog').showModal();
}
$('pair-dialog').onclose = async () => {
  if ($('pair-dialog').returnValue !== 'ok' || !pairing) return;
  const id = pairing, out = $('pair-result');
  out.className = 'muted';
  out.textContent = 'pairing with ' + nameOf(id) + '…';
  const r = await fetch('/api/pair', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ device_id: id, pin: $('pin').value }) });
  $('pin').value = '';
  if (r.ok) { const p = await r.json(); out.className = 'ok'; out.textContent = 'paired with ' + p.name + ' (' + p.device_id + ')'; }
  else { out.className = 'err'; out.textContent = (await r.text()).trim(); }
  refresh();
};
async function unpair(id) {
  if (!confirm('Unpair ' + nameOf(id) + '? It will need the PIN again.')) return;
  const r = await fetch('/api/paired/' + encodeURIComponent(id), { method: 'DELETE' });
  const out = $('pair-result');
  out.className = r.ok ? 'ok' : 'err';
  out.textContent = r.ok ? 'unpaired ' + nameOf(id) : (await r.text()).trim();
  refresh();
}
$('devices').onclick = e => {
  if (e.target.dataset.pair) askPin(e.target.dataset.pair);
  if (e.target.dataset.unpair) unpair(e.target.dataset.unpair);
};
$('picture').onclick = e => {
  const g = e.target.closest('.dev');
  if (!g) return;
  const d = known.get(g.dataset.id);
  if (d && d.paired) unpair(d.id); else if (d && d.found && d.auth_port) askPin(d.id);
};

// The event log, in words: the node keeps the last 200 (so a reload shows
// them), new ones arrive as `words` events; the filter hides what does not match.
const log = $('log');
const filter = $('filter');
const shown = line => !filter.value || line.textContent.toLowerCase().includes(filter.value.toLowerCase());
function logLine(at, words) {
  const line = document.createElement('div');
  line.textContent = new Date(at).toLocaleTimeString() + '  ' + words;
  line.hidden = !shown(line);
  log.prepend(line);
  while (log.childNodes.length > 200) log.lastChild.remove();
}
filter.oninput = () => log.childNodes.forEach(l => { l.hidden = !shown(l); });
(async () => {
  try { (await api('/api/recent')).forEach(e => logLine(e.at_ms, e.words)); } catch (e) {}
  const es = new EventSource('/api/events');
  es.addEventListener('words', m => logLine(Date.now(), m.data));
  // A busy node sends many events a second (one per message received): they
  // ask for one refresh, at most every half second, not one each.
  es.onmessage = soon;
})();
const chatLog = t => { const d = document.createElement('div'); d.textContent = t; $('chat').append(d); };
let channel = null;
async function loopbackOnly() {
  if (new URLSearchParams(location.search).get('loopback') === '1') {
    // Only test harnesses on loopback need this: media permission makes Chromium gather 127.0.0.1.
    try { (await navigator.mediaDevices.getUserMedia({ audio: true })).getTracks().forEach(t => t.stop()); } catch (e) {}
  }
}
// The node's STUN and TURN servers (none on a LAN-only node): a browser
// outside the node's network needs them to reach it.
async function iceConfig() {
  try { return { iceServers: (await api('/api/ice-servers')).ice_servers }; } catch (e) { return {}; }
}
async function chat(server, first) {
  await loopbackOnly();
  const pc = new RTCPeerConnection(await iceConfig());
  const dc = pc.createDataChannel(server);
  dc.binaryType = 'arraybuffer';
  dc.onopen = () => {
    channel = dc;
    chatLog('connected to ' + server);
    $('say').disabled = false;
    $('send').disabled = false;
    if (first) { dc.send(first); chatLog('> ' + first); }
  };
  dc.onclose = () => { chatLog('channel closed'); $('say').disabled = $('send').disabled = true; };
  dc.onmessage = e => chatLog('< ' + (typeof e.data === 'string' ? e.data : '[' + e.data.byteLength + ' bytes]'));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); }; setTimeout(r, 2000); });
  const resp = await fetch('/rtc/offer', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await resp.text();
  if (resp.status !== 201) { chatLog('refused: ' + text); return; }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
}
// WHEP player: plays a stream of this node (the dashboard's cookie is the credential).
let playing = null;
async function stopPlaying() {
  if (!playing) return;
  const { pc, location, timer } = playing;
  playing = null;
  clearInterval(timer);
  // The resource first (RFC 9725 §4.2), then the connection.
  await fetch(location, { method: 'DELETE' });
  pc.close();
  $('player-box').hidden = true;
}
async function play(stream, stopAfter) {
  await stopPlaying();
  await loopbackOnly();
  const config = await iceConfig();
  const pc = new RTCPeerConnection(config);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const media = new MediaStream();
  const video = $('player');
  pc.ontrack = e => { media.addTrack(e.track); video.srcObject = media; };
  await pc.setLocalDescription(await pc.createOffer());
  if ((config.iceServers || []).length) {
    // Reflexive and relayed candidates go in the offer (at most 2 s).
    await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); }; setTimeout(r, 2000); });
  }
  const resp = await fetch('/whep/' + encodeURIComponent(stream), { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const text = await resp.text();
  const info = $('playing');
  $('player-box').hidden = false;
  if (resp.status !== 201) { info.textContent = 'refused: ' + text; pc.close(); return; }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  const timer = setInterval(async () => {
    let frames = 0, size = '';
    (await pc.getStats()).forEach(s => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') { frames = s.framesDecoded || 0; size = s.frameWidth ? s.frameWidth + '×' + s.frameHeight : ''; }
    });
    info.textContent = `${stream}: ${pc.connectionState}, ${frames} frames decoded ${size}`;
    if (stopAfter && frames >= stopAfter) stopPlaying();
  }, 500);
  playing = { pc, location: resp.headers.get('Location'), timer };
}
$('streams').onclick = e => { if (e.target.dataset.play) play(e.target.dataset.play); };
$('stop').onclick = stopPlaying;
// A device's option is `dev:ID`; the label is then ID/SESSION (the gateway).
const label = () => {
  const v = $('server').value;
  return v.startsWith('dev:') ? v.slice(4) + '/' + ($('devsession').value || 'echo') : v;
};
$('server').onchange = () => { $('devsession').hidden = !$('server').value.startsWith('dev:'); };
$('connect').onclick = () => chat(label());
const say = () => {
  const box = $('say');
  if (channel && box.value) { channel.send(box.value); chatLog('> ' + box.value); box.value = ''; }
};
$('send').onclick = say;
$('say').onkeydown = e => { if (e.key === 'Enter') say(); };
async function servers() {
  try {
    const [list, devices] = await Promise.all([api('/api/servers'), api('/api/gateway')]);
    const sel = $('server');
    const keep = sel.value;
    sel.innerHTML = list.map(n => '<option>' + esc(n) + '</option>').join('') +
      (devices.length ? '<optgroup label="Devices through this node">' +
        devices.map(d => '<option value="dev:' + esc(d.device_id) + '">' + esc(d.name) + ' (' +
          esc(d.device_id.slice(0, 8)) + '…, ' + esc(d.via) + ')</option>').join('') + '</optgroup>' : '');
    // The echo server answers what you type: the one to try first.
    if (keep && [...sel.options].some(o => o.value === keep)) sel.value = keep;
    else if (list.includes('echo')) sel.value = 'echo';
  } catch (e) {}
}
servers();
// Devices come and go with discovery.
setInterval(servers, 10000);
drawTraffic();
refresh(true);
setInterval(() => refresh(true), 2000);
{
  const params = new URLSearchParams(location.search);
  if (params.get('chat')) chat(params.get('chat'), params.get('say'));
  // ?play=STREAM starts the player; stop_after=N stops it after N decoded frames.
  if (params.get('play')) play(params.get('play'), Number(params.get('stop_after') || 0));
}
