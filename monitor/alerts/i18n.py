"""The few texts of alert messages (CAP, Atom, e-mail) in English and the languages of the demo sites.

Languages: en, el, it, es, fr, pl, de, hr, nb. Indicator titles and hazard names stay in English (they
come from the indicator catalogue); only the fixed sentences and labels below are translated. A missing
language falls back to English. Site time zones come from the country (one zone per country: enough for
the demo sites; Spain's Canary Islands or Portugal's Azores would need a site-level zone).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

LANGUAGES: tuple[str, ...] = ("en", "el", "it", "es", "fr", "pl", "de", "hr", "nb")

#: The language of a country's public (ISO 3166-1 alpha-2 → one of LANGUAGES).
COUNTRY_LANGUAGE: dict[str, str] = {
    "GB": "en",
    "IE": "en",
    "MT": "en",
    "GR": "el",
    "CY": "el",
    "IT": "it",
    "SM": "it",
    "ES": "es",
    "FR": "fr",
    "LU": "fr",
    "PL": "pl",
    "DE": "de",
    "AT": "de",
    "HR": "hr",
    "NO": "nb",
}

#: One IANA time zone per country (mainland zone).
COUNTRY_ZONE: dict[str, str] = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "BG": "Europe/Sofia",
    "CH": "Europe/Zurich",
    "CY": "Asia/Nicosia",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "GR": "Europe/Athens",
    "HR": "Europe/Zagreb",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IS": "Atlantic/Reykjavik",
    "IT": "Europe/Rome",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "LV": "Europe/Riga",
    "MT": "Europe/Malta",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "RO": "Europe/Bucharest",
    "SE": "Europe/Stockholm",
    "SI": "Europe/Ljubljana",
    "SK": "Europe/Bratislava",
}

_LEVELS = {
    "en": ("low risk", "moderate risk", "high risk", "severe risk"),
    "el": ("χαμηλός κίνδυνος", "μέτριος κίνδυνος", "υψηλός κίνδυνος", "σοβαρός κίνδυνος"),
    "it": ("rischio basso", "rischio moderato", "rischio alto", "rischio grave"),
    "es": ("riesgo bajo", "riesgo moderado", "riesgo alto", "riesgo grave"),
    "fr": ("risque faible", "risque modéré", "risque élevé", "risque sévère"),
    "pl": ("ryzyko niskie", "ryzyko umiarkowane", "ryzyko wysokie", "ryzyko poważne"),
    "de": ("geringes Risiko", "mäßiges Risiko", "hohes Risiko", "sehr hohes Risiko"),
    "hr": ("nizak rizik", "umjeren rizik", "visok rizik", "vrlo visok rizik"),
    "nb": ("lav risiko", "moderat risiko", "høy risiko", "svært høy risiko"),
}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "opened": "New alert ({level}): {title} – {site}",
        "escalated": "Alert escalated ({level}): {title} – {site}",
        "resolved": "Alert ended: {title} – {site}",
        "cancelled": "Alert withdrawn: {title} – {site}",
        "value": "Value",
        "threshold": "Threshold",
        "period": "Period",
        "material": "Material",
        "since": "Since",
        "data": "Data",
        "updated": "Updated",
        "instruction_open": "Inspect the site for damage and plan protective or maintenance measures.",
        "instruction_resolved": "The condition has ended; no further action is needed for this alert.",
        "instruction_cancelled": "This alert was withdrawn as a false alarm; disregard it.",
        "synthetic": "Demonstration: computed from synthetic data, not from Copernicus observations.",
        "view": "View the alert",
        "unsubscribe": "Unsubscribe",
        "footer": "You receive this e-mail because this address is subscribed to Heritage Monitor alerts.",
        "digest_subject": "Heritage Monitor daily summary ({count})",
        "digest_intro": "Alert changes since the last summary:",
        "event_opened": "new",
        "event_escalated": "escalated",
        "event_resolved": "ended",
        "forecast_opened": "Forecast alert ({level}): {title} – {site}, expected from {onset}",
        "forecast_escalated": "Forecast alert raised ({level}): {title} – {site}, expected from {onset}",
        "forecast_resolved": "Forecast alert ended: {title} – {site}",
        "peak": "Forecast peak",
        "expected": "Expected",
        "lead_time": "Lead time",
        "days": "days",
        "issued": "Forecast issued",
        "instruction_forecast": "Prepare before the expected onset: check drainage, protective covers and "
        "the site's emergency plan.",
        "instruction_forecast_resolved": "The forecast no longer shows this condition, or observed data "
        "now follow it; no further action is needed for this forecast alert.",
    },
    "el": {
        "opened": "Νέα ειδοποίηση ({level}): {title} – {site}",
        "escalated": "Κλιμάκωση ειδοποίησης ({level}): {title} – {site}",
        "resolved": "Λήξη ειδοποίησης: {title} – {site}",
        "cancelled": "Ανάκληση ειδοποίησης: {title} – {site}",
        "value": "Τιμή",
        "threshold": "Όριο",
        "period": "Περίοδος",
        "material": "Υλικό",
        "since": "Από",
        "data": "Δεδομένα",
        "updated": "Ενημέρωση",
        "instruction_open": "Επιθεωρήστε το μνημείο για φθορές και σχεδιάστε μέτρα προστασίας ή συντήρησης.",
        "instruction_resolved": "Η κατάσταση έληξε· δεν απαιτείται άλλη ενέργεια για αυτή την ειδοποίηση.",
        "instruction_cancelled": "Η ειδοποίηση ανακλήθηκε ως ψευδής συναγερμός· αγνοήστε την.",
        "synthetic": "Επίδειξη: υπολογίστηκε από συνθετικά δεδομένα, όχι από παρατηρήσεις Copernicus.",
        "view": "Δείτε την ειδοποίηση",
        "unsubscribe": "Διαγραφή από τις ειδοποιήσεις",
        "footer": "Λαμβάνετε αυτό το μήνυμα επειδή η διεύθυνση αυτή είναι εγγεγραμμένη στις ειδοποιήσεις "
        "του Heritage Monitor.",
        "digest_subject": "Ημερήσια σύνοψη Heritage Monitor ({count})",
        "digest_intro": "Αλλαγές ειδοποιήσεων από την τελευταία σύνοψη:",
        "event_opened": "νέα",
        "event_escalated": "κλιμάκωση",
        "event_resolved": "λήξη",
        "forecast_opened": "Ειδοποίηση πρόγνωσης ({level}): {title} – {site}, αναμένεται από {onset}",
        "forecast_escalated": "Κλιμάκωση ειδοποίησης πρόγνωσης ({level}): {title} – {site}, αναμένεται από "
        "{onset}",
        "forecast_resolved": "Λήξη ειδοποίησης πρόγνωσης: {title} – {site}",
        "peak": "Μέγιστο πρόγνωσης",
        "expected": "Αναμένεται",
        "lead_time": "Χρόνος προειδοποίησης",
        "days": "ημέρες",
        "issued": "Έκδοση πρόγνωσης",
        "instruction_forecast": "Προετοιμαστείτε πριν από την αναμενόμενη έναρξη: ελέγξτε την "
        "αποστράγγιση, τα προστατευτικά καλύμματα και το σχέδιο έκτακτης ανάγκης του μνημείου.",
        "instruction_forecast_resolved": "Η πρόγνωση δεν δείχνει πλέον αυτή την κατάσταση ή την "
        "παρακολουθούν πλέον παρατηρήσεις· δεν απαιτείται άλλη ενέργεια για αυτή την ειδοποίηση πρόγνωσης.",
    },
    "it": {
        "opened": "Nuova allerta ({level}): {title} – {site}",
        "escalated": "Allerta aggravata ({level}): {title} – {site}",
        "resolved": "Allerta terminata: {title} – {site}",
        "cancelled": "Allerta ritirata: {title} – {site}",
        "value": "Valore",
        "threshold": "Soglia",
        "period": "Periodo",
        "material": "Materiale",
        "since": "Dal",
        "data": "Dati",
        "updated": "Aggiornato",
        "instruction_open": "Ispezionare il sito per individuare danni e pianificare misure di protezione "
        "o manutenzione.",
        "instruction_resolved": "La condizione è terminata; per questa allerta non servono altre azioni.",
        "instruction_cancelled": "Questa allerta è stata ritirata come falso allarme; non tenerne conto.",
        "synthetic": "Dimostrazione: calcolato da dati sintetici, non da osservazioni Copernicus.",
        "view": "Visualizza l'allerta",
        "unsubscribe": "Annulla l'iscrizione",
        "footer": "Ricevi questa e-mail perché questo indirizzo è iscritto alle allerte di Heritage Monitor.",
        "digest_subject": "Riepilogo giornaliero Heritage Monitor ({count})",
        "digest_intro": "Modifiche alle allerte dall'ultimo riepilogo:",
        "event_opened": "nuova",
        "event_escalated": "aggravata",
        "event_resolved": "terminata",
        "forecast_opened": "Allerta di previsione ({level}): {title} – {site}, attesa dal {onset}",
        "forecast_escalated": "Allerta di previsione aggravata ({level}): {title} – {site}, attesa dal "
        "{onset}",
        "forecast_resolved": "Allerta di previsione terminata: {title} – {site}",
        "peak": "Picco previsto",
        "expected": "Previsto",
        "lead_time": "Anticipo",
        "days": "giorni",
        "issued": "Previsione emessa",
        "instruction_forecast": "Prepararsi prima dell'inizio previsto: controllare drenaggi, coperture "
        "protettive e il piano di emergenza del sito.",
        "instruction_forecast_resolved": "La previsione non mostra più questa condizione, oppure ora la "
        "seguono i dati osservati; per questa allerta di previsione non servono altre azioni.",
    },
    "es": {
        "opened": "Nueva alerta ({level}): {title} – {site}",
        "escalated": "Alerta agravada ({level}): {title} – {site}",
        "resolved": "Alerta finalizada: {title} – {site}",
        "cancelled": "Alerta retirada: {title} – {site}",
        "value": "Valor",
        "threshold": "Umbral",
        "period": "Periodo",
        "material": "Material",
        "since": "Desde",
        "data": "Datos",
        "updated": "Actualizado",
        "instruction_open": "Inspeccione el sitio en busca de daños y planifique medidas de protección "
        "o mantenimiento.",
        "instruction_resolved": "La situación ha terminado; esta alerta no requiere más acciones.",
        "instruction_cancelled": "Esta alerta se ha retirado por ser una falsa alarma; "
        "no la tenga en cuenta.",
        "synthetic": "Demostración: calculado con datos sintéticos, no con observaciones de Copernicus.",
        "view": "Ver la alerta",
        "unsubscribe": "Cancelar la suscripción",
        "footer": "Recibe este correo porque esta dirección está suscrita a las alertas de Heritage Monitor.",
        "digest_subject": "Resumen diario de Heritage Monitor ({count})",
        "digest_intro": "Cambios en las alertas desde el último resumen:",
        "event_opened": "nueva",
        "event_escalated": "agravada",
        "event_resolved": "finalizada",
        "forecast_opened": "Alerta de previsión ({level}): {title} – {site}, prevista desde {onset}",
        "forecast_escalated": "Alerta de previsión agravada ({level}): {title} – {site}, prevista desde "
        "{onset}",
        "forecast_resolved": "Alerta de previsión finalizada: {title} – {site}",
        "peak": "Pico previsto",
        "expected": "Previsto",
        "lead_time": "Antelación",
        "days": "días",
        "issued": "Previsión emitida",
        "instruction_forecast": "Prepárese antes del inicio previsto: revise el drenaje, las protecciones "
        "y el plan de emergencia del sitio.",
        "instruction_forecast_resolved": "La previsión ya no muestra esta situación, o ya la siguen los "
        "datos observados; esta alerta de previsión no requiere más acciones.",
    },
    "fr": {
        "opened": "Nouvelle alerte ({level}) : {title} – {site}",
        "escalated": "Alerte aggravée ({level}) : {title} – {site}",
        "resolved": "Fin d'alerte : {title} – {site}",
        "cancelled": "Alerte retirée : {title} – {site}",
        "value": "Valeur",
        "threshold": "Seuil",
        "period": "Période",
        "material": "Matériau",
        "since": "Depuis",
        "data": "Données",
        "updated": "Mis à jour",
        "instruction_open": "Inspectez le site à la recherche de dommages et planifiez des mesures de "
        "protection ou d'entretien.",
        "instruction_resolved": "La situation a pris fin ; cette alerte ne demande plus aucune action.",
        "instruction_cancelled": "Cette alerte a été retirée comme fausse alerte ; n'en tenez pas compte.",
        "synthetic": "Démonstration : calculé à partir de données synthétiques, et non d'observations "
        "Copernicus.",
        "view": "Voir l'alerte",
        "unsubscribe": "Se désabonner",
        "footer": "Vous recevez ce courriel car cette adresse est abonnée aux alertes de Heritage Monitor.",
        "digest_subject": "Résumé quotidien Heritage Monitor ({count})",
        "digest_intro": "Modifications des alertes depuis le dernier résumé :",
        "event_opened": "nouvelle",
        "event_escalated": "aggravée",
        "event_resolved": "terminée",
        "forecast_opened": "Alerte de prévision ({level}) : {title} – {site}, attendue à partir du {onset}",
        "forecast_escalated": "Alerte de prévision aggravée ({level}) : {title} – {site}, attendue à "
        "partir du {onset}",
        "forecast_resolved": "Fin d'alerte de prévision : {title} – {site}",
        "peak": "Pic prévu",
        "expected": "Prévu",
        "lead_time": "Échéance",
        "days": "jours",
        "issued": "Prévision émise",
        "instruction_forecast": "Préparez-vous avant le début prévu : vérifiez le drainage, les "
        "protections et le plan d'urgence du site.",
        "instruction_forecast_resolved": "La prévision ne montre plus cette situation, ou les données "
        "observées la suivent désormais ; cette alerte de prévision ne demande plus aucune action.",
    },
    "pl": {
        "opened": "Nowy alert ({level}): {title} – {site}",
        "escalated": "Alert podwyższony ({level}): {title} – {site}",
        "resolved": "Alert zakończony: {title} – {site}",
        "cancelled": "Alert wycofany: {title} – {site}",
        "value": "Wartość",
        "threshold": "Próg",
        "period": "Okres",
        "material": "Materiał",
        "since": "Od",
        "data": "Dane",
        "updated": "Aktualizacja",
        "instruction_open": "Sprawdź obiekt pod kątem uszkodzeń i zaplanuj działania ochronne lub "
        "konserwacyjne.",
        "instruction_resolved": "Zagrożenie minęło; ten alert nie wymaga dalszych działań.",
        "instruction_cancelled": "Ten alert został wycofany jako fałszywy alarm; prosimy go zignorować.",
        "synthetic": "Demonstracja: obliczono na podstawie danych syntetycznych, "
        "a nie obserwacji Copernicus.",
        "view": "Zobacz alert",
        "unsubscribe": "Wypisz się",
        "footer": "Otrzymujesz tę wiadomość, ponieważ ten adres jest zapisany na alerty Heritage Monitor.",
        "digest_subject": "Dzienne podsumowanie Heritage Monitor ({count})",
        "digest_intro": "Zmiany alertów od ostatniego podsumowania:",
        "event_opened": "nowy",
        "event_escalated": "podwyższony",
        "event_resolved": "zakończony",
        "forecast_opened": "Alert prognostyczny ({level}): {title} – {site}, spodziewany od {onset}",
        "forecast_escalated": "Alert prognostyczny podwyższony ({level}): {title} – {site}, spodziewany od "
        "{onset}",
        "forecast_resolved": "Alert prognostyczny zakończony: {title} – {site}",
        "peak": "Prognozowane maksimum",
        "expected": "Spodziewany",
        "lead_time": "Wyprzedzenie",
        "days": "dni",
        "issued": "Prognoza wydana",
        "instruction_forecast": "Przygotuj się przed spodziewanym początkiem: sprawdź odwodnienie, osłony "
        "ochronne i plan awaryjny obiektu.",
        "instruction_forecast_resolved": "Prognoza nie pokazuje już tego zagrożenia lub śledzą je już dane "
        "obserwacyjne; ten alert prognostyczny nie wymaga dalszych działań.",
    },
    "de": {
        "opened": "Neue Warnung ({level}): {title} – {site}",
        "escalated": "Warnung verschärft ({level}): {title} – {site}",
        "resolved": "Warnung beendet: {title} – {site}",
        "cancelled": "Warnung zurückgezogen: {title} – {site}",
        "value": "Wert",
        "threshold": "Schwelle",
        "period": "Zeitraum",
        "material": "Material",
        "since": "Seit",
        "data": "Daten",
        "updated": "Aktualisiert",
        "instruction_open": "Untersuchen Sie die Stätte auf Schäden und planen Sie Schutz- oder "
        "Instandhaltungsmaßnahmen.",
        "instruction_resolved": "Die Lage hat sich normalisiert; diese Warnung erfordert keine weiteren "
        "Maßnahmen.",
        "instruction_cancelled": "Diese Warnung wurde als Fehlalarm zurückgezogen; bitte nicht beachten.",
        "synthetic": "Demonstration: aus synthetischen Daten berechnet, nicht aus Copernicus-Beobachtungen.",
        "view": "Warnung ansehen",
        "unsubscribe": "Abmelden",
        "footer": "Sie erhalten diese E-Mail, weil diese Adresse Warnungen von Heritage Monitor "
        "abonniert hat.",
        "digest_subject": "Tägliche Zusammenfassung Heritage Monitor ({count})",
        "digest_intro": "Änderungen an Warnungen seit der letzten Zusammenfassung:",
        "event_opened": "neu",
        "event_escalated": "verschärft",
        "event_resolved": "beendet",
        "forecast_opened": "Vorhersagewarnung ({level}): {title} – {site}, erwartet ab {onset}",
        "forecast_escalated": "Vorhersagewarnung verschärft ({level}): {title} – {site}, erwartet ab {onset}",
        "forecast_resolved": "Vorhersagewarnung beendet: {title} – {site}",
        "peak": "Vorhergesagter Höchstwert",
        "expected": "Erwartet",
        "lead_time": "Vorlaufzeit",
        "days": "Tage",
        "issued": "Vorhersage ausgegeben",
        "instruction_forecast": "Bereiten Sie sich vor dem erwarteten Beginn vor: Entwässerung, "
        "Schutzabdeckungen und den Notfallplan der Stätte prüfen.",
        "instruction_forecast_resolved": "Die Vorhersage zeigt diese Lage nicht mehr, oder "
        "Beobachtungsdaten verfolgen sie nun; diese Vorhersagewarnung erfordert keine weiteren Maßnahmen.",
    },
    "hr": {
        "opened": "Novo upozorenje ({level}): {title} – {site}",
        "escalated": "Upozorenje pojačano ({level}): {title} – {site}",
        "resolved": "Upozorenje završeno: {title} – {site}",
        "cancelled": "Upozorenje povučeno: {title} – {site}",
        "value": "Vrijednost",
        "threshold": "Prag",
        "period": "Razdoblje",
        "material": "Materijal",
        "since": "Od",
        "data": "Podaci",
        "updated": "Ažurirano",
        "instruction_open": "Pregledajte lokalitet zbog mogućih oštećenja i planirajte mjere zaštite ili "
        "održavanja.",
        "instruction_resolved": "Stanje je završilo; za ovo upozorenje nisu potrebne daljnje radnje.",
        "instruction_cancelled": "Ovo upozorenje povučeno je kao lažna uzbuna; zanemarite ga.",
        "synthetic": "Demonstracija: izračunato iz sintetičkih podataka, "
        "a ne iz opažanja programa Copernicus.",
        "view": "Pogledajte upozorenje",
        "unsubscribe": "Odjava",
        "footer": "Primate ovu poruku jer je ova adresa pretplaćena na upozorenja sustava Heritage Monitor.",
        "digest_subject": "Dnevni sažetak Heritage Monitor ({count})",
        "digest_intro": "Promjene upozorenja od posljednjeg sažetka:",
        "event_opened": "novo",
        "event_escalated": "pojačano",
        "event_resolved": "završeno",
        "forecast_opened": "Prognostičko upozorenje ({level}): {title} – {site}, očekuje se od {onset}",
        "forecast_escalated": "Prognostičko upozorenje pojačano ({level}): {title} – {site}, očekuje se od "
        "{onset}",
        "forecast_resolved": "Prognostičko upozorenje završeno: {title} – {site}",
        "peak": "Prognozirani vrhunac",
        "expected": "Očekuje se",
        "lead_time": "Vrijeme najave",
        "days": "dana",
        "issued": "Prognoza izdana",
        "instruction_forecast": "Pripremite se prije očekivanog početka: provjerite odvodnju, zaštitne "
        "pokrove i plan za izvanredne situacije lokaliteta.",
        "instruction_forecast_resolved": "Prognoza više ne pokazuje ovo stanje ili ga sada prate opažanja; "
        "za ovo prognostičko upozorenje nisu potrebne daljnje radnje.",
    },
    "nb": {
        "opened": "Nytt varsel ({level}): {title} – {site}",
        "escalated": "Varsel forsterket ({level}): {title} – {site}",
        "resolved": "Varsel avsluttet: {title} – {site}",
        "cancelled": "Varsel trukket tilbake: {title} – {site}",
        "value": "Verdi",
        "threshold": "Terskel",
        "period": "Periode",
        "material": "Materiale",
        "since": "Siden",
        "data": "Data",
        "updated": "Oppdatert",
        "instruction_open": "Undersøk stedet for skader og planlegg vern- eller vedlikeholdstiltak.",
        "instruction_resolved": "Situasjonen er over; dette varselet krever ingen flere tiltak.",
        "instruction_cancelled": "Dette varselet er trukket tilbake som falsk alarm; se bort fra det.",
        "synthetic": "Demonstrasjon: beregnet fra syntetiske data, ikke fra Copernicus-observasjoner.",
        "view": "Se varselet",
        "unsubscribe": "Meld deg av",
        "footer": "Du mottar denne e-posten fordi denne adressen abonnerer på varsler fra Heritage Monitor.",
        "digest_subject": "Daglig oppsummering fra Heritage Monitor ({count})",
        "digest_intro": "Endringer i varsler siden forrige oppsummering:",
        "event_opened": "nytt",
        "event_escalated": "forsterket",
        "event_resolved": "avsluttet",
        "forecast_opened": "Prognosevarsel ({level}): {title} – {site}, ventet fra {onset}",
        "forecast_escalated": "Prognosevarsel forsterket ({level}): {title} – {site}, ventet fra {onset}",
        "forecast_resolved": "Prognosevarsel avsluttet: {title} – {site}",
        "peak": "Prognostisert toppverdi",
        "expected": "Ventet",
        "lead_time": "Varslingstid",
        "days": "dager",
        "issued": "Prognose utstedt",
        "instruction_forecast": "Forbered dere før ventet start: sjekk drenering, beskyttende dekker og "
        "stedets beredskapsplan.",
        "instruction_forecast_resolved": "Prognosen viser ikke lenger denne situasjonen, eller "
        "observasjoner følger den nå; dette prognosevarselet krever ingen flere tiltak.",
    },
}


def language(code: str | None) -> str:
    """A supported language for `code` ("de-AT" → "de", "no"/"nn" → "nb"); English when unsupported."""
    base = (code or "en").strip().lower().replace("_", "-").split("-")[0]
    base = "nb" if base in ("no", "nn") else base
    return base if base in LANGUAGES else "en"


def text(lang: str, key: str, **values) -> str:
    """One text in `lang` (English when missing), with `{placeholders}` filled in."""
    template = TEXTS.get(lang, TEXTS["en"]).get(key) or TEXTS["en"][key]
    return template.format(**values) if values else template


def level_phrase(lang: str, level: int) -> str:
    """The risk level (1 low … 4 severe) as a phrase ("high risk", "rischio alto")."""
    names = _LEVELS.get(lang, _LEVELS["en"])
    return names[min(max(level, 1), 4) - 1]


def country_language(country: str | None) -> str:
    """The language of a country's public (English when not among LANGUAGES)."""
    return COUNTRY_LANGUAGE.get((country or "").upper(), "en")


def site_zone(country: str | None) -> ZoneInfo:
    """The time zone of a site, from its country (UTC when unknown)."""
    return ZoneInfo(COUNTRY_ZONE.get((country or "").upper(), "UTC"))
