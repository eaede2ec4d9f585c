// Milesight EM500-SMTC soil sensor: written for Flurfunk's tests from the channel layout in its user guide.
// [channel id, channel type, value]…: battery % (u8), soil temperature 0.1 °C (s16 little-endian), volumetric water
// content in half percent steps (u8, called "humidity" as the vendor does). Stops at the first unknown channel.
const CHANNELS = new Map([
  ["1/117", { key: "battery", size: 1, read: (b, at) => b[at] }],
  ["3/103", { key: "temperature", size: 2, read: (b, at) => (((b[at + 1] << 24) >> 16) | b[at]) / 10 }],
  ["4/104", { key: "humidity", size: 1, read: (b, at) => b[at] / 2 }],
]);

function decodeUplink({ bytes }) {
  const data = {};
  let at = 0;
  while (at + 1 < bytes.length) {
    const channel = CHANNELS.get(`${bytes[at]}/${bytes[at + 1]}`);
    if (channel === undefined) break;
    at += 2;
    if (at + channel.size > bytes.length) throw new RangeError(`${channel.key} is cut short at byte ${at}`);
    data[channel.key] = channel.read(bytes, at);
    at += channel.size;
  }
  return { data };
}
