// Decentlab DL-ATM41 weather station (METER ATMOS 41), Decentlab protocol v2: written for Flurfunk's tests from
// the protocol description. Version byte, device id (u16), flags (u16), then per set flag bit the sensor's 16-bit
// big-endian words; each value is (word - 32768) / divisor, the battery word / 1000.
const SPEED = "m⋅s⁻¹";
const ATMOS41 = [
  ["solar_radiation", "Solar radiation", 1, "W⋅m⁻²"],
  ["precipitation", "Precipitation", 1000, "mm"],
  ["lightning_strike_count", "Lightning strike count", 1],
  ["lightning_average_distance", "Lightning average distance", 1, "km"],
  ["wind_speed", "Wind speed", 100, SPEED],
  ["wind_direction", "Wind direction", 10, "°"],
  ["maximum_wind_speed", "Maximum wind speed", 100, SPEED],
  ["air_temperature", "Air temperature", 10, "°C"],
  ["vapor_pressure", "Vapor pressure", 100, "kPa"],
  ["atmospheric_pressure", "Atmospheric pressure", 100, "kPa"],
  ["relative_humidity", "Relative humidity", 10, "%"],
  ["sensor_temperature_internal", "Sensor temperature (internal)", 10, "°C"],
  ["x_orientation_angle", "X orientation angle", 10, "°"],
  ["y_orientation_angle", "Y orientation angle", 10, "°"],
  ["compass_heading", "Compass heading", 1, "°"],
  ["north_wind_speed", "North wind speed", 100, SPEED],
  ["east_wind_speed", "East wind speed", 100, SPEED],
];

const word = (bytes, at) => {
  if (at + 2 > bytes.length) throw new RangeError(`payload too short: word at byte ${at} of ${bytes.length}`);
  return (bytes[at] << 8) | bytes[at + 1];
};

function described(displayName, value, unit) {
  const shown = { displayName, value };
  if (unit !== undefined) shown.unit = unit;
  return shown;
}

function decodeUplink({ bytes }) {
  if (bytes.length < 1) throw new RangeError("empty payload");
  const version = bytes[0];
  if (version !== 2) return { errors: [`protocol version ${version} doesn't match v2`] };
  const data = { protocol_version: version, device_id: word(bytes, 1) };
  const flags = word(bytes, 3);
  let at = 5;
  if (flags & 1) {
    for (const [name, displayName, divisor, unit] of ATMOS41) {
      data[name] = described(displayName, (word(bytes, at) - 32768) / divisor, unit);
      at += 2;
    }
  }
  if (flags & 2) data.battery_voltage = described("Battery voltage", word(bytes, at) / 1000, "V");
  return { data };
}
