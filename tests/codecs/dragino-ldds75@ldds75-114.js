// Dragino LDDS75 ultrasonic distance sensor, firmware 1.1.4: written for Flurfunk's tests from the byte layout.
// fPort 2, eight bytes big-endian: battery mV (low 14 bits), distance mm (0: no sensor, 20: invalid reading),
// interrupt flag, DS18B20 temperature in 0.1 °C (signed), sensor flag.
function decodeUplink(input) {
  if (input.fPort !== 2) return { errors: ["unknown FPort"] };
  var b = input.bytes;
  if (b.length < 8) throw new Error("payload too short: " + b.length + " of 8 bytes");
  var distance = (b[2] << 8) | b[3];
  var temperature = (b[5] << 8) | b[6];
  if (temperature & 0x8000) temperature -= 0x10000;
  var shown = distance === 0 ? "No Sensor" : distance === 20 ? "Invalid Reading" : distance + " mm";
  return {
    data: {
      Bat: (((b[0] << 8) | b[1]) & 0x3fff) / 1000,
      Distance: shown,
      Interrupt_flag: b[4],
      TempC_DS18B20: (temperature / 10).toFixed(2),
      Sensor_flag: b[7],
    },
  };
}
