// An SMSC for interoperability tests, built on node-smpp (npm "smpp"), a third-party
// SMPP v3.4 implementation that shares no code with UVox or smpplib.
//
// node-smpp parses and encodes every PDU; this script only decides what to answer and
// records what it saw, so the tests can check UVox's bytes through someone else's
// decoder. It can be told, over a small HTTP control port, to print message ids in
// the formats real SMSCs use, to carry receipts only in TLVs or in message_payload,
// and to send PDUs of its own (enquire_link, unbind, generic_nack, a mobile-originated
// deliver_sm) the way a carrier's SMSC does.
//
//   node smsc.js --system-id ID --password PW [--port N]
// (--port: listen there, e.g. an SMSC that comes back where it was; any free port otherwise)
//   [--record FILE]: append each accepted submit_sm's destination_addr to FILE, one a line, before
//   answering it, so a count survives this process being killed
// prints one JSON line {"smpp_port": N, "control_port": M} once it listens.

'use strict';

const http = require('http');
const smpp = require('smpp');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '').replace(/-/g, '_')] = process.argv[i + 1];
}
const fs = require('fs');
const SYSTEM_ID = args.system_id || 'uvox';
const PASSWORD = args.password || 'pw';

const config = {
  resp_id: 'hex',        // how submit_sm_resp prints the id: dec, hex, HEX, dec0 (10 digits), hex0 (16 digits)
  receipt_id: 'hex',     // how the receipt prints it (text and receipted_message_id)
  receipt_text_id: null, // when set, the text's id uses this format and the TLV keeps receipt_id
  // text+tlv; text (no TLVs); tlv (TLVs, empty short_message); payload (text in message_payload,
  // no TLVs); payload+tlv
  receipt_mode: 'text+tlv',
  receipt_pdu: 'deliver_sm', // or data_sm: some SMSCs send receipts that way (TLVs, text in message_payload)
  receipt_stat: 'DELIVRD',
  receipt_delay: 50,     // ms
  nack_submits: 0,       // answer the next N submit_sm with generic_nack
  refuse_submits: 0,     // answer the next N submit_sm with refuse_status
  refuse_status: 0x08,   // ESME_RSYSERR
  close_after_submits: 0, // close the socket after accepting the Nth submit_sm (once)
  keep_messages: true,   // false: only the per-destination tally (a long soak would fill memory)
};

let nextId = 0x3a0f10 + Math.floor(Math.random() * 0x10000);
const messages = [];  // every submit_sm, decoded by node-smpp
const accepted = new Map();  // destination_addr -> submit_sm accepted for it (duplicates show as > 1)
const events = [];    // binds, unbinds, answers to what we sent, closes
const pending = [];   // receipts waiting for a receiver bind
const STATES = {ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};

function formatId(n, style) {
  switch (style) {
    case 'dec': return String(n);
    case 'dec0': return String(n).padStart(10, '0');
    case 'HEX': return n.toString(16).toUpperCase();
    case 'hex0': return n.toString(16).padStart(16, '0');
    default: return n.toString(16);
  }
}

function stamp(d) {
  const p = (x) => String(x).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function receivers(systemId) {
  return server.sessions.filter((s) => s.bound && s.mode !== 'transmitter' && s.systemId === systemId);
}

function sendReceipt(r) {
  const targets = receivers(r.systemId);
  if (!targets.length) {
    pending.push(r);
    return;
  }
  const session = targets[0];
  const textId = formatId(r.n, config.receipt_text_id || config.receipt_id);
  const tlvId = formatId(r.n, config.receipt_id);
  const stat = config.receipt_stat;
  const body = `id:${textId} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${stamp(r.submitted)} ` +
    `done date:${stamp(new Date())} stat:${stat} err:${stat === 'DELIVRD' ? '000' : '001'} text:${r.text.slice(0, 20)}`;
  const pdu = {
    source_addr: r.destination_addr, source_addr_ton: 1, source_addr_npi: 1,
    destination_addr: r.source_addr, esm_class: 0x04, data_coding: 0,
  };
  const mode = config.receipt_mode;
  if (config.receipt_pdu === 'data_sm') {
    // data_sm has no short_message: TLVs, and the text (if any) in message_payload
    if (mode !== 'tlv') pdu.message_payload = Buffer.from(body, 'latin1');
  } else if (mode === 'tlv') {
    pdu.short_message = Buffer.alloc(0);
  } else if (mode.startsWith('payload')) {
    pdu.short_message = Buffer.alloc(0);
    pdu.message_payload = Buffer.from(body, 'latin1');
  } else {
    pdu.short_message = Buffer.from(body, 'latin1');
  }
  if (mode.endsWith('tlv')) {
    pdu.receipted_message_id = tlvId;
    pdu.message_state = STATES[stat] || 7;
  }
  const key = `${r.n}:${Date.now()}:${Math.random()}`;
  session.unacked.set(key, r);
  const kind = config.receipt_pdu === 'data_sm' ? 'data_sm' : 'deliver_sm';
  session[kind](pdu, (resp) => {
    session.unacked.delete(key);
    events.push({event: kind + '_resp', status: resp.command_status, id: tlvId});
  });
}

function record(session, pdu) {
  const sm = pdu.short_message || {};
  let udh = '';
  if (sm.udh && sm.udh.length) {
    const ies = Buffer.concat(sm.udh);
    udh = Buffer.concat([Buffer.from([ies.length]), ies]).toString('hex');
  }
  const text = typeof sm.message === 'string' ? sm.message : Buffer.isBuffer(sm.message) ? sm.message.toString('hex') : '';
  const m = {
    system_id: session.systemId, source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
    destination_addr: pdu.destination_addr, dest_addr_ton: pdu.dest_addr_ton,
    data_coding: pdu.data_coding, esm_class: pdu.esm_class, registered_delivery: pdu.registered_delivery,
    udh, text,
  };
  if (config.keep_messages) messages.push(m);
  return m;
}

const server = smpp.createServer((session) => {
  session.bound = false;
  session.on('error', () => {});  // a client that vanishes is part of the test
  // Like a real SMSC, a receipt is kept until the ESME acknowledges it: one sent on a
  // session that then closes goes out again on the next receiver bind.
  session.unacked = new Map();
  session.on('close', () => {
    session.bound = false;
    events.push({event: 'close', system_id: session.systemId || ''});
    const lost = [...session.unacked.values()];
    session.unacked.clear();
    lost.forEach(sendReceipt);
  });

  for (const mode of ['transceiver', 'transmitter', 'receiver']) {
    session.on('bind_' + mode, (pdu) => {
      session.pause();
      if (pdu.system_id !== SYSTEM_ID || pdu.password !== PASSWORD) {
        events.push({event: 'bind_refused', mode, system_id: pdu.system_id});
        session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
        session.close();
        return;
      }
      session.bound = true;
      session.mode = mode;
      session.systemId = pdu.system_id;
      events.push({event: 'bind', mode, system_id: pdu.system_id, system_type: pdu.system_type});
      session.send(pdu.response({system_id: 'node-smsc'}));
      session.resume();
      if (mode !== 'transmitter') {
        const due = pending.splice(0, pending.length);
        due.forEach(sendReceipt);
      }
    });
  }

  session.on('submit_sm', (pdu) => {
    if (!session.bound || session.mode === 'receiver') {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    const m = record(session, pdu);
    if (config.nack_submits > 0) {
      config.nack_submits -= 1;
      m.outcome = 'nacked';
      session.send(new smpp.PDU('generic_nack', {sequence_number: pdu.sequence_number,
                                                 command_status: smpp.ESME_RINVCMDLEN}));
      return;
    }
    if (config.refuse_submits > 0) {
      config.refuse_submits -= 1;
      m.outcome = 'refused';
      session.send(pdu.response({command_status: config.refuse_status}));
      return;
    }
    const n = nextId++;
    m.message_id = formatId(n, config.resp_id);
    m.outcome = 'accepted';
    accepted.set(m.destination_addr, (accepted.get(m.destination_addr) || 0) + 1);
    if (args.record) fs.appendFileSync(args.record, m.destination_addr + '\n');
    session.send(pdu.response({message_id: m.message_id}));
    if (config.close_after_submits > 0 && --config.close_after_submits === 0) {
      events.push({event: 'server_closed'});
      setTimeout(() => session.destroy(), 20);
    }
    if (pdu.registered_delivery & 0x01) {
      const r = {n, systemId: session.systemId, source_addr: pdu.source_addr, destination_addr: pdu.destination_addr,
                 text: m.text, submitted: new Date()};
      setTimeout(() => sendReceipt(r), config.receipt_delay);
    }
  });

  session.on('enquire_link', (pdu) => {
    events.push({event: 'enquire_link'});
    session.send(pdu.response());
  });
  session.on('enquire_link_resp', (pdu) => events.push({event: 'enquire_link_resp', status: pdu.command_status}));
  session.on('unbind', (pdu) => {
    events.push({event: 'unbind', system_id: session.systemId});
    session.bound = false;
    session.send(pdu.response());
    session.close();
  });
  session.on('unbind_resp', () => {
    events.push({event: 'unbind_resp', system_id: session.systemId});
    session.close();
  });
  session.on('generic_nack', (pdu) => events.push({event: 'generic_nack', status: pdu.command_status,
                                                   sequence: pdu.sequence_number}));
  session.on('unknown', (pdu) => session.send(pdu.response()));
});

// What the control port can make the SMSC send to every bound session able to receive.
function push(what) {
  const targets = server.sessions.filter((s) => s.bound);
  for (const s of targets) {
    if (what.pdu === 'enquire_link') {
      s.enquire_link({}, (resp) => events.push({event: 'enquire_link_resp', status: resp.command_status}));
    } else if (what.pdu === 'unbind') {
      s.bound = false;
      s.unbind({}, () => {
        events.push({event: 'unbind_resp', system_id: s.systemId});
        s.close();
      });
    } else if (what.pdu === 'generic_nack') {
      s.send(new smpp.PDU('generic_nack', {sequence_number: what.sequence || 0,
                                           command_status: what.status || smpp.ESME_RINVCMDID}));
    } else if (what.pdu === 'deliver_sm' && s.mode !== 'transmitter') {
      // A mobile-originated message: an SMS a handset sent to one of the customer's numbers.
      s.deliver_sm({source_addr: what.source_addr || '15551230000', source_addr_ton: 1, source_addr_npi: 1,
                    destination_addr: what.destination_addr || '15559990000', esm_class: 0,
                    data_coding: what.data_coding || 0,
                    short_message: Buffer.from(what.text || 'STOP', what.data_coding === 8 ? 'utf16le' : 'latin1')},
                   (resp) => events.push({event: 'mo_resp', status: resp.command_status}));
    }
  }
  return targets.length;
}

const control = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let out;
    const input = body ? JSON.parse(body) : {};
    if (req.method === 'GET' && req.url === '/messages') out = messages;
    else if (req.method === 'GET' && req.url === '/accepted') out = Object.fromEntries(accepted);
    else if (req.method === 'GET' && req.url === '/events') out = events;
    else if (req.method === 'GET' && req.url === '/sessions') {
      out = server.sessions.map((s) => ({bound: s.bound, mode: s.mode || null, system_id: s.systemId || null}));
    } else if (req.method === 'POST' && req.url === '/config') out = Object.assign(config, input);
    else if (req.method === 'POST' && req.url === '/send') out = {sent: push(input)};
    else if (req.method === 'POST' && req.url === '/disconnect') {
      const n = server.sessions.length;
      server.sessions.slice().forEach((s) => s.destroy());
      events.push({event: 'server_closed'});
      out = {closed: n};
    } else {
      res.writeHead(404);
      res.end('{}');
      return;
    }
    res.writeHead(200, {'Content-Type': 'application/json'});
    res.end(JSON.stringify(out));
  });
});

server.listen(Number(args.port || 0), '127.0.0.1', () => {
  control.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({smpp_port: server.address().port, control_port: control.address().port}) + '\n');
  });
});
