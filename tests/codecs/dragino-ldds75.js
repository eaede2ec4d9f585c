// Dragino LDDS75 ultrasonic distance sensor, early codec: written for Flurfunk's tests from the LDDS75 byte layout.
// fPort 2, five bytes: battery mV (low 14 bits of bytes 0-1), distance mm (bytes 2-3), interrupt flag. The early
// vendor codec calls the battery word "distance" and the distance "value", and answers any other length with
// "No Sensor"; this codec keeps those names so its output is the same.
function decodeUplink(input) {
  if (input.fPort !== 2) return { errors: ["unknown FPort"] };
  var bytes = input.bytes;
  if (bytes.length !== 5) return { data: { distance: "No Sensor" } };
  var battery = ((bytes[0] << 8) | bytes[1]) & 0x3fff;
  return { data: { distance: battery < 20 ? "Invalid Reading" : battery, value: (bytes[2] << 8) | bytes[3] } };
}
