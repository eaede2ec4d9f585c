"""Texts that people read (tasks, alerts, pages, reports): German by default, English available."""

from __future__ import annotations

from typing import Literal

Language = Literal["de", "en"]
DEFAULT_LANGUAGE: Language = "de"

# key -> language -> template (str.format placeholders)
MESSAGES: dict[str, dict[Language, str]] = {
    # cloud dispatcher page (cloud/api/page.py) and task states
    "page.dispatch.title": {"de": "Bauhof-Disposition {day}", "en": "Works yard dispatch {day}"},
    "page.dispatch.today": {"de": "Heute", "en": "Today"},
    "page.dispatch.previous_day": {"de": "Vortag", "en": "Previous day"},
    "page.dispatch.next_day": {"de": "Folgetag", "en": "Next day"},
    "page.dispatch.overview": {"de": "Aufgaben an diesem Tag", "en": "Tasks on this day"},
    "page.dispatch.no_tasks": {"de": "Keine Aufgaben.", "en": "No tasks."},
    "page.dispatch.nearest_day": {
        "de": "An diesem Tag ist nichts geplant. Nächster Tag mit Aufgaben: {day}.",
        "en": "Nothing is planned on this day. Nearest day with tasks: {day}.",
    },
    "page.dispatch.route": {
        "de": "Route {kind}: {stops} Stopps, {km} km",
        "en": "Route {kind}: {stops} stops, {km} km",
    },
    "page.dispatch.column.municipality": {"de": "Gemeinde", "en": "Municipality"},
    "page.dispatch.column.kind": {"de": "Art", "en": "Kind"},
    "page.dispatch.column.asset": {"de": "Objekt", "en": "Asset"},
    "page.dispatch.column.village": {"de": "Ortsteil", "en": "Village"},
    "page.dispatch.column.reason": {"de": "Grund", "en": "Reason"},
    "page.dispatch.column.state": {"de": "Status", "en": "State"},
    "page.dispatch.column.priority": {"de": "Priorität", "en": "Priority"},
    "page.dispatch.readings": {
        "de": "{count} Messwerte gespeichert, neuester von {time}.",
        "en": "{count} readings stored, newest from {time}.",
    },
    "page.dispatch.no_readings": {"de": "Noch keine Messwerte.", "en": "No readings yet."},
    "page.dispatch.other_language": {"de": "English", "en": "Deutsch"},
    # task feed (cloud/api/feed.py) and crew page (cloud/api/crew.py)
    "feed.ical.calendar": {"de": "Bauhof-Aufgaben {crew}", "en": "Works yard tasks {crew}"},
    "feed.ical.summary": {"de": "{kind}: {asset}", "en": "{kind}: {asset}"},
    "page.crew.title": {"de": "Kolonne {crew}", "en": "Crew {crew}"},
    "page.crew.login": {"de": "Anmelden", "en": "Log in"},
    "page.crew.logout": {"de": "Abmelden", "en": "Log out"},
    "page.crew.username": {"de": "Benutzername", "en": "User name"},
    "page.crew.password": {"de": "Passwort", "en": "Password"},
    "page.crew.login_failed": {"de": "Anmeldung fehlgeschlagen.", "en": "Login failed."},
    "page.crew.crew": {"de": "Kolonne", "en": "Crew"},
    "page.crew.day": {"de": "Tag", "en": "Day"},
    "page.crew.show": {"de": "Anzeigen", "en": "Show"},
    "page.crew.start": {"de": "Beginnen", "en": "Start"},
    "page.crew.done": {"de": "Erledigt", "en": "Done"},
    "page.crew.skip": {"de": "Auslassen", "en": "Skip"},
    "page.crew.skip_reason": {"de": "Grund für das Auslassen", "en": "Reason for skipping"},
    "page.crew.no_tasks": {
        "de": "Keine Aufgaben für diese Kolonne an diesem Tag.",
        "en": "No tasks for this crew on this day.",
    },
    "page.crew.map_offline": {
        "de": "Kartenkacheln nicht erreichbar – Route ohne Hintergrundkarte.",
        "en": "Map tiles unreachable – route shown without a background map.",
    },
    "page.crew.error": {"de": "Nicht gespeichert: {detail}", "en": "Not saved: {detail}"},
    "page.crew.offline": {"de": "Keine Verbindung zum Server.", "en": "No connection to the server."},
    "page.crew.stops": {"de": "{count} Stopps, {km} km", "en": "{count} stops, {km} km"},
    # routes planned with a fleet: the vehicle, trips to the disposal site or hydrant, loads (feed and both pages)
    "route.reload.collect": {"de": "Entleeren an: {site}", "en": "Unload at: {site}"},
    "route.reload.water": {"de": "Nachfüllen an: {site}", "en": "Refill at: {site}"},
    "route.vehicle": {
        "de": "Fahrzeug {vehicle}, Kolonne {crew}: {start}–{end} Uhr, Fahrten zur Entladestelle: {trips}",
        "en": "Vehicle {vehicle}, crew {crew}: {start}–{end}, trips to the unloading site: {trips}",
    },
    "route.vehicle.water": {
        "de": "Fahrzeug {vehicle}, Kolonne {crew}: {start}–{end} Uhr, Nachfüllen: {trips}",
        "en": "Vehicle {vehicle}, crew {crew}: {start}–{end}, refills: {trips}",
    },
    "route.load": {"de": "{load} L", "en": "{load} L"},
    "route.at": {"de": "ca. {time} Uhr", "en": "about {time}"},
    "route.late": {
        "de": "{minutes} min über das Schichtende hinaus",
        "en": "{minutes} min past the end of the shift",
    },
    "route.overload": {
        "de": "{litres} L mehr, als das Fahrzeug ohne Entladestelle fasst",
        "en": "{litres} L more than the vehicle holds without an unloading site",
    },
    "feed.ical.route": {"de": "Tour {vehicle}: {stops} Stopps", "en": "Route {vehicle}: {stops} stops"},
    "feed.csv.reload.collect": {"de": "Entleeren", "en": "Unloading"},
    "feed.csv.reload.water": {"de": "Nachfüllen", "en": "Refilling"},
    "page.dispatch.live": {"de": "Live-Aktualisierung", "en": "Live updates"},
    "page.dispatch.crew_link": {"de": "Kolonnen-Ansicht", "en": "Crew view"},
    "task.state.planned": {"de": "geplant", "en": "planned"},
    "task.state.assigned": {"de": "zugewiesen", "en": "assigned"},
    "task.state.in_progress": {"de": "in Arbeit", "en": "in progress"},
    "task.state.done": {"de": "erledigt", "en": "done"},
    "task.state.skipped": {"de": "ausgelassen: {skip_reason}", "en": "skipped: {skip_reason}"},
    "task.state.cancelled": {"de": "storniert", "en": "cancelled"},
    "task.collect.reason": {
        "de": "Behälter {asset} ist zu {fill_pct:.0f} % gefüllt (Schwelle {threshold_pct:.0f} %).",
        "en": "Bin {asset} is {fill_pct:.0f}% full (threshold {threshold_pct:.0f}%).",
    },
    "task.collect.overflow": {
        "de": "Behälter {asset} läuft bald über: {fill_pct:.0f} % gefüllt (Schwelle {threshold_pct:.0f} %), "
        "Leerung vor der nächsten regulären Tour.",
        "en": "Bin {asset} is about to overflow: {fill_pct:.0f}% full (threshold {threshold_pct:.0f}%), "
        "emptied before the next regular round.",
    },
    "task.water.reason": {
        "de": "Boden bei {asset} ist trocken: {vwc_pct:.0f} % Wassergehalt (Schwelle {threshold_pct:.0f} %); "
        "{litres:.0f} l gießen.",
        "en": "Soil at {asset} is dry: {vwc_pct:.0f}% water content (threshold {threshold_pct:.0f}%); "
        "water {litres:.0f} L.",
    },
    "task.inspect.battery": {
        "de": "Batterie von Sensor {device} an {asset} ist schwach ({battery:.2f} V).",
        "en": "Battery of sensor {device} at {asset} is low ({battery:.2f} V).",
    },
    "task.kind.collect": {"de": "Leeren", "en": "Collect"},
    "task.kind.water": {"de": "Gießen", "en": "Water"},
    "task.kind.maintain": {"de": "Wartung", "en": "Maintain"},
    "task.kind.inspect": {"de": "Prüfen", "en": "Inspect"},
    # scheduler (cloud/scheduler): opportunistic collection, battery checks, readings not acted on
    "task.collect.forecast": {
        "de": "Behälter {asset} ist zu {fill_pct:.0f} % gefüllt und erreicht bis zur nächsten Tour voraussichtlich "
        "{forecast_pct:.0f} % (Zuwachs {rate_pct:.0f} % pro Tag).",
        "en": "Bin {asset} is {fill_pct:.0f}% full and expected to reach {forecast_pct:.0f}% by the next run "
        "(filling {rate_pct:.0f}% a day).",
    },
    "task.collect.forecast_optional": {
        "de": "Behälter {asset} ist zu {fill_pct:.0f} % gefüllt, bis zur nächsten Tour voraussichtlich "
        "{forecast_pct:.0f} %; liegt am Weg (Umweg {detour_m:.0f} m) und wird mitgeleert.",
        "en": "Bin {asset} is {fill_pct:.0f}% full, expected {forecast_pct:.0f}% by the next run; on the way "
        "(detour {detour_m:.0f} m), emptied along the route.",
    },
    "task.water.balance": {
        "de": "Wurzelraum bei {asset} trocknet aus: {depletion_mm:.0f} mm verbraucht, leicht verfügbar sind "
        "{raw_mm:.0f} mm (Saugspannung ≈ {tension_kpa:.0f} kPa); {litres:.0f} l gießen.",
        "en": "Root zone at {asset} is drying out: {depletion_mm:.0f} mm used of {raw_mm:.0f} mm readily available "
        "(tension ≈ {tension_kpa:.0f} kPa); water {litres:.0f} L.",
    },
    "task.water.weather_estimated": {
        "de": "Wetter von {days} Tag(en) fehlte und wurde geschätzt (ET₀ vom Vortag, kein Regen).",
        "en": "Weather for {days} day(s) was missing and was estimated (previous day's ET₀, no rain).",
    },
    "task.collect.opportunistic": {
        "de": "Behälter {asset} ist zu {fill_pct:.0f} % gefüllt und liegt am Weg (Umweg {detour_m:.0f} m); "
        "wird mitgeleert.",
        "en": "Bin {asset} is {fill_pct:.0f}% full and on the way (detour {detour_m:.0f} m); emptied along the route.",
    },
    "task.inspect.battery_low_v": {
        "de": "Batterie des Sensors an {asset} ist schwach: {battery_v:.2f} V (Schwelle {threshold_v:.2f} V).",
        "en": "Battery of the sensor at {asset} is low: {battery_v:.2f} V (threshold {threshold_v:.2f} V).",
    },
    "task.inspect.battery_low_pct": {
        "de": "Batterie des Sensors an {asset} ist schwach: {battery_pct:.0f} % (Schwelle {threshold_pct:.0f} %).",
        "en": "Battery of the sensor at {asset} is low: {battery_pct:.0f}% (threshold {threshold_pct:.0f}%).",
    },
    "task.inspect.sensor_fault": {
        "de": "Sensor an {asset} liefert vermutlich falsche Werte ({quantity}: {faults}); bitte Sensor prüfen.",
        "en": "The sensor at {asset} probably reports false values ({quantity}: {faults}); please check the sensor.",
    },
    "plan.skip.flagged": {
        "de": "{quantity} an {asset} nicht berücksichtigt: Messwert ist markiert ({flags}).",
        "en": "{quantity} at {asset} not acted on: the reading is flagged ({flags}).",
    },
    "plan.skip.stale": {
        "de": "{quantity} an {asset} nicht berücksichtigt: letzter Messwert ist {age_h:.1f} h alt "
        "(Grenze {limit_h:.1f} h).",
        "en": "{quantity} at {asset} not acted on: the latest reading is {age_h:.1f} h old (limit {limit_h:.1f} h).",
    },
    "plan.skip.missing": {
        "de": "{quantity} an {asset} nicht berücksichtigt: kein Messwert vorhanden.",
        "en": "{quantity} at {asset} not acted on: there is no reading.",
    },
    "plan.quantity.fill_ratio": {"de": "Füllstand", "en": "Fill level"},
    "plan.quantity.soil_vwc": {"de": "Bodenfeuchte", "en": "Soil moisture"},
    "plan.quantity.battery_v": {"de": "Batteriespannung", "en": "Battery voltage"},
    "plan.quantity.battery_pct": {"de": "Batterieladung", "en": "Battery charge"},
    # gateway status for the field technician (`flurfunk gateway status`)
    "gateway.status.title": {"de": "Gateway {gateway}: {status}", "en": "Gateway {gateway}: {status}"},
    "gateway.status.ok": {"de": "in Ordnung", "en": "ok"},
    "gateway.status.degraded": {"de": "eingeschränkt", "en": "degraded"},
    "gateway.status.failed": {"de": "ausgefallen", "en": "failed"},
    "gateway.status.unreachable": {
        "de": "Der Gateway-Dienst antwortet nicht unter {url} ({error}). Läuft `flurfunk gateway run`?",
        "en": "The gateway service does not answer at {url} ({error}). Is `flurfunk gateway run` running?",
    },
    "gateway.status.uptime": {"de": "Laufzeit: {hours:.1f} h", "en": "Uptime: {hours:.1f} h"},
    "gateway.status.received": {"de": "Empfangen: {counts}", "en": "Received: {counts}"},
    "gateway.status.decoded": {
        "de": "Dekodiert und gepuffert: {decoded} Uplinks ({readings} Messwerte), Duplikate: {duplicates}",
        "en": "Decoded and buffered: {decoded} uplinks ({readings} readings), duplicates: {duplicates}",
    },
    "gateway.status.dropped": {"de": "Verworfen: {counts}", "en": "Dropped: {counts}"},
    "gateway.status.buffer": {
        "de": "Puffer: {readings} Messwerte warten, {used_mb:.1f} von {quota_mb:.0f} MB belegt, "
        "{quarantined} Einträge in Quarantäne",
        "en": "Buffer: {readings} readings waiting, {used_mb:.1f} of {quota_mb:.0f} MB used, "
        "{quarantined} entries quarantined",
    },
    "gateway.status.sync": {
        "de": "Cloud: ältester ungesendeter Messwert {oldest_s:.0f} s alt, Sync-Verzug {lag_s:.0f} s, "
        "{synced} Messwerte bestätigt",
        "en": "Cloud: oldest unsent reading {oldest_s:.0f} s old, sync lag {lag_s:.0f} s, "
        "{synced} readings acknowledged",
    },
    "gateway.status.last_problem": {"de": "Letztes Sync-Problem: {problem}", "en": "Last sync problem: {problem}"},
    "gateway.status.sources": {"de": "Quellen: {sources}", "en": "Sources: {sources}"},
    "gateway.status.connected": {"de": "verbunden", "en": "connected"},
    "gateway.status.disconnected": {"de": "getrennt", "en": "disconnected"},
    "gateway.status.problem.fatal": {"de": "Dienst ausgefallen: {detail}", "en": "Service failed: {detail}"},
    "gateway.status.problem.token_refused": {
        "de": "Die Cloud lehnt das Token dieses Gateways ab: Token-Datei prüfen.",
        "en": "The cloud refuses this gateway's token: check the token file.",
    },
    "gateway.status.problem.buffer_nearly_full": {
        "de": "Der Puffer ist fast voll: Verbindung zur Cloud prüfen.",
        "en": "The buffer is nearly full: check the connection to the cloud.",
    },
    "gateway.status.problem.buffer_full": {
        "de": "Der Puffer war voll: Messwerte wurden verworfen.",
        "en": "The buffer was full: readings were dropped.",
    },
    "gateway.status.problem.sync_stale": {
        "de": "Seit über einer Stunde nichts an die Cloud übertragen: Mobilfunk/Internet prüfen.",
        "en": "Nothing sent to the cloud for over an hour: check the mobile/internet connection.",
    },
    "gateway.status.problem.source_disconnected": {
        "de": "Quelle {detail} ist nicht verbunden.",
        "en": "Source {detail} is not connected.",
    },
    "gateway.status.none": {"de": "keine", "en": "none"},
    "gateway.status.anomaly_model": {
        "de": "Anomaliemodell: {version} ({source})",
        "en": "Anomaly model: {version} ({source})",
    },
    "gateway.status.model_source.local": {"de": "lokal konfiguriert", "en": "configured locally"},
    "gateway.status.model_source.cloud": {"de": "von der Cloud zugewiesen", "en": "assigned by the cloud"},
    "gateway.status.model_source.shipped": {"de": "mitgeliefert", "en": "shipped"},
    "gateway.status.model_problem": {
        "de": "Zugewiesenes Anomaliemodell abgelehnt: {detail}",
        "en": "Assigned anomaly model refused: {detail}",
    },
    "gateway.status.semtech_udp": {
        "de": "Paketweiterleiter (UDP {listening}): {rxpk} Funkpakete, {uplinks} Uplinks gespeichert, "
        "{push_acks} PUSH_ACK, {upstream} Datagramme an Netzwerkserver weitergereicht",
        "en": "Packet forwarders (UDP {listening}): {rxpk} radio packets, {uplinks} uplinks stored, "
        "{push_acks} PUSH_ACKs, {upstream} datagrams relayed to network servers",
    },
    "gateway.status.forwarder": {
        "de": "  Weiterleiter {eui}: zuletzt vor {age_s:.0f} s gehört, letzte Statistik: {rxnb} empfangen, "
        "{rxok} mit gültiger CRC, {ackr} % bestätigt",
        "en": "  Forwarder {eui}: last heard {age_s:.0f} s ago, last stat: {rxnb} received, {rxok} with a good CRC, "
        "{ackr} % acknowledged",
    },
    # alerts (cloud/alerts): {group} village or town, {members} the assets/devices/gateways, {value} the number
    "alert.threshold": {
        "de": "{count} Messstelle(n) in {group} außerhalb der Grenze (zuletzt {value}): {members}",
        "en": "{count} sensor(s) in {group} beyond the limit (last {value}): {members}",
    },
    "alert.tree_dry": {
        "de": "Junge Bäume trocknen aus in {group}: {members} (Bodensaugspannung {value} kPa) – bitte wässern.",
        "en": "Young trees drying out in {group}: {members} (soil tension {value} kPa) – please water.",
    },
    "alert.bin_full": {"de": "Behälter voll in {group}: {members}.", "en": "Bins full in {group}: {members}."},
    "alert.overflow": {
        "de": "Behälter laufen vor der nächsten geplanten Leerung über in {group}: {members}.",
        "en": "Bins will overflow before their next planned collection in {group}: {members}.",
    },
    "alert.frost": {
        "de": "Frost in {group} ({value} °C): Bewässerung aussetzen.",
        "en": "Frost in {group} ({value} °C): suspend watering.",
    },
    "alert.storm": {
        "de": "Sturm in {group} ({value} m/s): Bäume kontrollieren.",
        "en": "Storm in {group} ({value} m/s): inspect the trees.",
    },
    "alert.battery_low": {
        "de": "Batterie schwach in {group}: {members} ({value} V).",
        "en": "Battery low in {group}: {members} ({value} V).",
    },
    "alert.rate": {
        "de": "Schnelle Änderung in {group}: {members} ({value} pro Stunde).",
        "en": "Fast change in {group}: {members} ({value} per hour).",
    },
    "alert.flag": {"de": "Sensorfehler gemeldet in {group}: {members}.", "en": "Sensor fault in {group}: {members}."},
    "alert.silence": {
        "de": "Sensoren melden sich nicht mehr in {group}: {members}.",
        "en": "Sensors gone silent in {group}: {members}.",
    },
    "alert.gateway_offline": {
        "de": "Gateway {members} meldet sich nicht mehr bei der Cloud: Strom und Mobilfunk prüfen.",
        "en": "Gateway {members} no longer reaches the cloud: check power and the mobile connection.",
    },
    "alert.gateway_buffer": {
        "de": "Der Puffer von Gateway {members} füllt sich ({value} Einträge): Verbindung zur Cloud prüfen.",
        "en": "Gateway {members}'s buffer is filling ({value} entries): check its connection to the cloud.",
    },
    "alert.severity.info": {"de": "Hinweis", "en": "Notice"},
    "alert.severity.warning": {"de": "Warnung", "en": "Warning"},
    "alert.severity.critical": {"de": "Kritisch", "en": "Critical"},
    "alert.subject.opened": {
        "de": "[Flurfunk {municipality}] {severity}: {summary}",
        "en": "[Flurfunk {municipality}] {severity}: {summary}",
    },
    "alert.subject.escalated": {
        "de": "[Flurfunk {municipality}] Eskalation (Stufe {level}), nicht quittiert: {summary}",
        "en": "[Flurfunk {municipality}] Escalation (level {level}), not acknowledged: {summary}",
    },
    "alert.subject.resolved": {
        "de": "[Flurfunk {municipality}] Erledigt: {summary}",
        "en": "[Flurfunk {municipality}] Resolved: {summary}",
    },
    "alert.mail.body": {
        "de": "{summary}\n\nAlarm {alert_id} ({severity}), Kolonne {crew}, zuerst gesehen {first_seen}.\n"
        "Bitte auf der Kolonnenseite quittieren; sonst wird {next_on_call} benachrichtigt.",
        "en": "{summary}\n\nAlert {alert_id} ({severity}), crew {crew}, first seen {first_seen}.\n"
        "Please acknowledge it on the crew page; otherwise {next_on_call} is notified.",
    },
    "alert.mail.nobody": {"de": "niemand weiter", "en": "nobody else"},
    "alert.page.title": {"de": "Alarme", "en": "Alerts"},
    "alert.page.none": {"de": "Keine offenen Alarme.", "en": "No open alerts."},
    "alert.page.acknowledge": {"de": "Quittieren", "en": "Acknowledge"},
    "alert.page.acknowledged": {"de": "quittiert von {by}", "en": "acknowledged by {by}"},
    "gateway.status.problem.forwarder_silent": {
        "de": "Paketweiterleiter {detail} meldet sich seit über 5 Minuten nicht: Konzentrator und Stromversorgung "
        "prüfen.",
        "en": "Packet forwarder {detail} has been silent for over 5 minutes: check the concentrator and its power.",
    },
    # planner with fleet and calendar (cloud/scheduler/planning.py, calendar.py)
    "plan.calendar.closed_day": {"de": "Bauhof geschlossen", "en": "Works yard closed"},
    "plan.calendar.weekend": {"de": "Wochenende", "en": "weekend"},
    "plan.skip.water_closed_day": {
        "de": "{asset}: Gießen fällig, aber heute kein Arbeitstag ({reason}) – verschoben auf {next_day:%d.%m.%Y}.",
        "en": "{asset}: watering due, but today is no working day ({reason}) – moved to {next_day:%Y-%m-%d}.",
    },
    "plan.skip.water_not_watering_day": {
        "de": "{asset}: trocken, aber heute fährt kein Wasserwagen – gegossen wird am nächsten Gießtag "
        "({next_day:%d.%m.%Y}).",
        "en": "{asset}: dry, but no water tanker goes today – watered on the next watering day ({next_day:%Y-%m-%d}).",
    },
    "plan.waste.residual": {"de": "Restmüll", "en": "residual waste"},
    "plan.waste.paper": {"de": "Papier", "en": "paper"},
    "plan.waste.organic": {"de": "Bioabfall", "en": "organic waste"},
    "plan.waste.glass": {"de": "Altglas", "en": "glass"},
    "plan.skip.unserved.not_worth_detour": {
        "de": "{asset}: auf keiner Route ({kind}) – der Umweg lohnt sich heute nicht.",
        "en": "{asset}: on no route ({kind}) – not worth the detour today.",
    },
    "plan.skip.unserved.capacity": {
        "de": "{asset}: auf keiner Route ({kind}) – kein Fahrzeug hat heute noch Platz dafür.",
        "en": "{asset}: on no route ({kind}) – no vehicle has room for it today.",
    },
    "plan.skip.unserved.time_window": {
        "de": "{asset}: auf keiner Route ({kind}) – in der Schicht ({shift}) nicht mehr erreichbar.",
        "en": "{asset}: on no route ({kind}) – cannot be reached within the shift ({shift}).",
    },
    "plan.skip.unserved.no_vehicle": {
        "de": "{asset}: auf keiner Route – kein Fahrzeug des Bauhofs für {kind}.",
        "en": "{asset}: on no route – the works yard has no vehicle for {kind}.",
    },
    "plan.fallback.bin_history": {
        "de": "Keine Prognose: zu wenig Füllstandsverlauf ({readings} Messwerte an {days} Tagen, nötig {min_days} "
        "Tage); geplant nach dem aktuellen Füllstand.",
        "en": "No forecast: too little fill history ({readings} readings on {days} days, {min_days} days needed); "
        "planned by the latest fill level.",
    },
    "plan.fallback.no_station": {
        "de": "Keine Wasserbilanz: {municipality} hat keine Wetterstation; geplant nach der aktuellen Bodenfeuchte.",
        "en": "No water balance: {municipality} has no weather station; planned by the latest soil moisture.",
    },
    "plan.fallback.planting_year": {
        "de": "Keine Wasserbilanz: Pflanzjahr {planting_year} liegt nach der Saison {year} (Bestand prüfen); geplant "
        "nach der aktuellen Bodenfeuchte.",
        "en": "No water balance: planting year {planting_year} is after the season {year} (check the inventory); "
        "planned by the latest soil moisture.",
    },
    "plan.fallback.weather_days": {
        "de": "Keine Wasserbilanz: zu wenig Wetterdaten für {municipality} ({days} vollständige Tage, nötig "
        "{min_days}); geplant nach der aktuellen Bodenfeuchte.",
        "en": "No water balance: too little weather data for {municipality} ({days} complete days, {min_days} "
        "needed); planned by the latest soil moisture.",
    },
    "plan.note.route_late": {
        "de": "Tour {route} passt nicht in die Schicht: {minutes} min zu lang (Pflichtstopps bleiben drin).",
        "en": "Route {route} does not fit the shift: {minutes} min too long (must-go stops kept).",
    },
    "plan.note.no_rain_forecast": {
        "de": "Ohne Regenvorhersage geplant (keine Vorhersagequelle).",
        "en": "Planned without a rain forecast (no forecast source).",
    },
}


def text(key: str, language: Language = DEFAULT_LANGUAGE, **values: object) -> str:
    """The message `key` in `language`, filled with `values`; KeyError names a missing key."""
    try:
        template = MESSAGES[key][language]
    except KeyError as error:
        raise KeyError(f"no text {key!r} in language {language!r}") from error
    return template.format(**values)
