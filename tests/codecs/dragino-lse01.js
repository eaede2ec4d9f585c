// Dragino LSE01 soil sensor, fPort 2: written for Flurfunk's tests from the LSE01 byte layout (user manual 2.3).
// Eleven bytes, big-endian: battery mV (14 bits), DS18B20 0.1 °C (signed), soil water 0.01 %, soil temperature
// 0.01 °C (sign bit: minus 0xFFFF, as the device does), conductivity µS/cm, interrupt byte (unused here).

function word(bytes, at) {
  if (at + 2 > bytes.length) throw new Error("payload too short: byte " + at + " of " + bytes.length);
  return (bytes[at] << 8) | bytes[at + 1];
}

function decodeUplink(input) {
  if (input.fPort !== 2) return { errors: ["unknown FPort"] };
  var bytes = input.bytes;
  var probe = word(bytes, 2);
  var soilTemperature = word(bytes, 6);
  return {
    data: {
      Bat: (word(bytes, 0) & 0x3fff) / 1000,
      TempC_DS18B20: ((probe & 0x8000 ? probe - 0x10000 : probe) / 10).toFixed(1),
      water_SOIL: (word(bytes, 4) / 100).toFixed(2),
      temp_SOIL: ((soilTemperature & 0x8000 ? soilTemperature - 0xffff : soilTemperature) / 100).toFixed(2),
      conduct_SOIL: word(bytes, 8),
    },
  };
}
