// Milesight EM310-UDL ultrasonic distance sensor: written for Flurfunk's tests from the channel layout in the
// EM310-UDL user guide. [channel id, channel type, value]…; decoding stops at the first unknown channel.
var CHANNELS = {
  "1/117": { key: "battery", size: 1 }, // 0x01 0x75: battery %, uint8
  "3/130": { key: "distance", size: 2 }, // 0x03 0x82: distance mm, uint16 little-endian
  "4/0": { key: "tilt", size: 1 }, // 0x04 0x00: 0 upright, anything else tilted
};

function decodeUplink(input) {
  var bytes = input.bytes;
  var data = {};
  var at = 0;
  while (at + 1 < bytes.length) {
    var channel = CHANNELS[bytes[at] + "/" + bytes[at + 1]];
    if (!channel) break;
    at += 2;
    if (at + channel.size > bytes.length) throw new Error(channel.key + " is cut short at byte " + at);
    if (channel.key === "distance") data.distance = bytes[at] | (bytes[at + 1] << 8);
    else if (channel.key === "tilt") data.tilt = bytes[at] === 0 ? "normal" : "tilt";
    else data[channel.key] = bytes[at];
    at += channel.size;
  }
  return { data: data };
}
