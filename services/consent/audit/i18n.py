"""The audit pages' words, Norwegian bokmål first, English second."""

from __future__ import annotations

from typing import Any

LANGS = ("nb", "en")

TEXT: dict[str, tuple[str, str]] = {
    "title": ("Personvernrevisjon", "Privacy audit"),
    "skip": ("Hopp til hovedinnhold", "Skip to main content"),
    "nav": ("Hovedmeny", "Main menu"),
    "nav.search": ("Beslutninger", "Decisions"),
    "nav.status": ("Loggstatus", "Log status"),
    "nav.glass": ("Nødtilgang", "Break-the-glass"),
    "nav.whatif": ("Hva om", "What-if"),
    "nav.views": ("Innsyn i revisjonen", "Audit access log"),
    "nav.signins": ("Innlogginger", "Sign-ins"),
    "signins.title": ("Innloggingsforsøk", "Sign-in attempts"),
    "signins.intro": (
        "Alle forsøk på å logge inn på revisjonssidene, også de som ble avvist, og hvorfor.",
        "Every attempt to sign in to the audit pages, refused ones too, and why.",
    ),
    "signins.address": ("Adresse", "Address"),
    "signins.method": ("Måte", "Method"),
    "signins.result": ("Resultat", "Result"),
    "signins.ok": ("Logget inn", "Signed in"),
    "signins.refused": ("Avvist", "Refused"),
    "moving.title": ("Du er logget inn", "You are signed in"),
    "moving.continue": ("Gå videre", "Continue"),
    "login.throttled": (
        "For mange mislykkede forsøk. Vent før du prøver igjen:",
        "Too many failed attempts. Wait before trying again:",
    ),
    "logout": ("Logg ut", "Log out"),
    "language": ("English", "Norsk"),
    "signed_in_as": ("Innlogget som", "Signed in as"),
    "login.title": ("Logg inn", "Sign in"),
    "login.username": ("Brukernavn", "Username"),
    "login.password": ("Passord", "Password"),
    "login.submit": ("Logg inn", "Sign in"),
    "login.failed": ("Feil brukernavn eller passord.", "Wrong username or password."),
    "login.oidc": ("Logg inn med virksomhetens innlogging", "Sign in with your organisation"),
    "refused.title": ("Ingen tilgang", "Access refused"),
    "refused.body": (
        "Bare personvernombud har tilgang til denne siden. Forsøket er registrert.",
        "Only privacy officers may see this page. The attempt has been recorded.",
    ),
    "csrf": (
        "Skjemaet er utløpt. Last siden på nytt og prøv igjen.",
        "The form has expired. Reload the page and try again.",
    ),
    "search.title": ("Søk i beslutninger", "Search decisions"),
    "case_id": ("Sak", "Case"),
    "unit": ("Enhet (avsender eller mottaker)", "Unit (source or recipient)"),
    "data_category": ("Opplysningskategori", "Data category"),
    "outcome": ("Utfall", "Outcome"),
    "legal_basis": ("Rettsgrunnlag", "Legal basis"),
    "legal_basis.hint": (
        "F.eks. consent:, statute:bvl-13-2, break_the_glass:",
        "E.g. consent:, statute:bvl-13-2, break_the_glass:",
    ),
    "since": ("Fra dato", "From date"),
    "until": ("Til dato", "To date"),
    "any": ("Alle", "Any"),
    "search": ("Søk", "Search"),
    "results": ("Beslutninger, nyeste først", "Decisions, newest first"),
    "none": ("Ingen beslutninger passer søket.", "No decisions match the search."),
    "next": ("Neste side", "Next page"),
    "first": ("Første side", "First page"),
    "decided_at": ("Tidspunkt", "Time"),
    "source": ("Avsender", "Source"),
    "recipient": ("Mottaker", "Recipient"),
    "purpose": ("Formål", "Purpose"),
    "allow": ("Delt", "Released"),
    "withhold": ("Holdt tilbake", "Withheld"),
    "open": ("Åpne", "Open"),
    "bad_date": ("Datoen må skrives som ÅÅÅÅ-MM-DD.", "Dates are written YYYY-MM-DD."),
    "detail.title": ("Beslutning", "Decision"),
    "fields": ("Opplysninger som ble delt", "Fields released"),
    "no_fields": ("Ingen", "None"),
    "reasons": ("Begrunnelser (fra beslutningstidspunktet)", "Reasons (as decided)"),
    "reason_nb": ("Forklaring til barnet og representanten", "Explanation for the child"),
    "obligations": ("Plikter", "Obligations"),
    "policy_revision": ("Regelverksversjon", "Policy revision"),
    "data_version": ("Regeldataversjon", "Policy data version"),
    "consents_relied": ("Samtykke beslutningen bygger på", "Consent relied on"),
    "consents_in_force": ("Samtykker i kraft ved beslutningen", "Consents in force"),
    "inputs": (
        "Grunnlag for beslutningen (minimert, uten innhold)",
        "Policy input (minimised, no content)",
    ),
    "inputs.erased": ("Slettet sammen med saken.", "Erased with the case."),
    "proof": ("Kontroll av loggføringen", "Log record check"),
    "proof.valid": (
        "Gyldig: posten er med i den signerte loggen og er uendret.",
        "Valid: the record is in the signed log and unchanged.",
    ),
    "proof.invalid": (
        "Ugyldig: posten stemmer ikke med den signerte loggen.",
        "Invalid: the record does not match the signed log.",
    ),
    "proof.path": ("Inklusjonsbevis (søsken-hasher)", "Inclusion proof (sibling hashes)"),
    "key": ("Nøkkel", "Key"),
    "tree_head": ("Signert tretopp", "Signed tree head"),
    "tree_size": ("Antall poster", "Records"),
    "root": ("Rothash", "Root hash"),
    "signed_at": ("Signert", "Signed at"),
    "log_index": ("Plass i loggen", "Log index"),
    "record_hash": ("Posthash", "Record hash"),
    "not_found": ("Fant ikke beslutningen.", "No such decision."),
    "status.title": ("Status for beslutningsloggen", "Decision log status"),
    "status.no_head": ("Loggen har ingen signert tretopp ennå.", "The log has no signed head yet."),
    "status.last": ("Siste fullstendige kontroll", "Last full verification"),
    "status.never": ("Loggen er ikke kontrollert ennå.", "The log has not been verified yet."),
    "status.ok": (
        "Alle poster stemmer med de signerte tretoppene.",
        "Every record matches the signed tree heads.",
    ),
    "status.failed": ("Kontrollen fant feil:", "Verification found problems:"),
    "status.verify": ("Kontroller hele loggen nå", "Verify the whole log now"),
    "status.by": ("utført av", "run by"),
    "glass.justification": (
        "Begrunnelse (forseglet, hash i loggen)",
        "Justification (sealed, hash in the log)",
    ),
    "glass.unreadable": (
        "Kan ikke leses eller stemmer ikke med hashen i loggen.",
        "Cannot be read, or does not match its hash in the log.",
    ),
    "glass.escalated": ("Sendt til personvernombudet", "Escalated to the privacy officer"),
    "witnesses.title": ("Vitner utenfor databasen", "Witnesses outside the database"),
    "witnesses.none": (
        "Ingen vitner har medsignert loggen ennå.",
        "No witness has cosigned the log yet.",
    ),
    "witnesses.latest": ("Siste medsignerte tretopp", "Latest cosigned tree head"),
    "witnesses.alarms": ("Alarmer fra vitner", "Alarms from witnesses"),
    "witnesses.checked": ("Ved siste kontroll", "At the last verification"),
    "witness": ("Vitne", "Witness"),
    "witness.agrees": ("enig", "agrees"),
    "witness.disagrees": ("uenig", "disagrees"),
    "witness.unreachable": ("svarte ikke", "did not answer"),
    "witness.no checkpoint": ("har ikke medsignert noe", "has cosigned nothing"),
    "proof.unchecked": (
        "Beviset er ikke kontrollert: meglerens offentlige nøkkel ble ikke funnet.",
        "The proof was not checked: the broker's public key was not found.",
    ),
    "history.title": ("Samtykkehistorikk for saken", "Consent history of the case"),
    "history.none": ("Ingen samtykker er registrert for saken.", "No consents for this case."),
    "consent.granted": ("Gitt", "Granted"),
    "consent.withdrawn": ("Trukket tilbake", "Withdrawn"),
    "consent": ("Samtykke", "Consent"),
    "event": ("Hendelse", "Event"),
    "grantor": ("Gitt av", "Granted by"),
    "scope": ("Gjelder", "Scope"),
    "report.title": ("Innsynsrapport: hva er delt om barnet", "Access report: what was shared"),
    "report.intro": (
        "Denne oversikten viser hvilke opplysninger om barnet som er delt, med hvem, når og "
        "hvorfor. Den viser også forespørsler som ble avslått. Innholdet i opplysningene står "
        "ikke her.",
        "This report shows what information about the child was shared, with whom, when and "
        "why, and which requests were refused. The information itself is not shown here.",
    ),
    "report.shared": ("Delt", "Shared"),
    "report.refused": ("Avslått, ingenting ble sendt", "Refused, nothing was sent"),
    "report.what": ("Hva", "What"),
    "report.who": ("Med hvem", "With whom"),
    "report.when": ("Når", "When"),
    "report.why": ("Hvorfor", "Why"),
    "report.none": ("Ingen forespørsler om deling er registrert.", "No share requests recorded."),
    "report.print": ("Skriv ut", "Print"),
    "report.link": ("Innsynsrapport", "Access report"),
    "glass.title": ("Nødtilgang til kontroll", "Break-the-glass reviews"),
    "glass.intro": (
        "Deling i nødsituasjon skal kontrolleres innen fristen.",
        "Emergency releases must be reviewed before the deadline.",
    ),
    "glass.none": ("Ingen nødtilganger venter på kontroll.", "No break-the-glass release waits."),
    "deadline": ("Frist", "Deadline"),
    "overdue": ("Fristen er passert", "Overdue"),
    "note": ("Merknad", "Note"),
    "approve": ("Godkjenn", "Approve"),
    "reject": ("Avvis", "Reject"),
    "verdict": ("Vurdering", "Verdict"),
    "approved": ("Godkjent", "Approved"),
    "rejected": ("Avvist", "Rejected"),
    "reviewed": ("Kontrollert", "Reviewed"),
    "review.saved": (
        "Kontrollen er lagret og ført i beslutningsloggen.",
        "The review is saved and appended to the decision log.",
    ),
    "review.note_needed": ("Skriv en merknad om vurderingen.", "Write a note on the review."),
    "whatif.title": ("Hva om: prøv et nytt regelverk", "What-if: try a candidate policy"),
    "whatif.intro": (
        "Kjør et foreslått regelverk på lagret beslutningsgrunnlag i en periode. Listen viser "
        "hver beslutning der utfallet eller opplysningene som deles ville blitt annerledes.",
        "Run a candidate policy over the stored inputs of a period. The list shows every "
        "decision whose outcome or released fields would change.",
    ),
    "whatif.module": ("Modul som erstattes", "Module to replace"),
    "whatif.rego": ("Rego-kode", "Rego source"),
    "whatif.file": ("eller last opp en .rego-fil", "or upload a .rego file"),
    "whatif.dir": ("eller en regelverksmappe på tjeneren", "or a policy directory on the server"),
    "whatif.run": ("Kjør", "Run"),
    "whatif.changed": ("Beslutninger som ville endret seg", "Decisions that would change"),
    "whatif.nochange": (
        "Ingen beslutninger i perioden ville endret seg.",
        "No decision in the period would change.",
    ),
    "whatif.summary": (
        "Kontrollert: {checked}, uendret: {unchanged}, uten lagret grunnlag: "
        "{no_input}. Regelverksversjon {revision}.",
        "Checked: {checked}, unchanged: {unchanged}, without stored input: "
        "{no_input}. Policy revision {revision}.",
    ),
    "whatif.error": ("Regelverket kunne ikke lastes:", "The policy could not be loaded:"),
    "whatif.reasons": ("Begrunnelser med nytt regelverk", "Reasons under the candidate"),
    "now": ("Nå", "Now"),
    "candidate": ("Med nytt regelverk", "With the candidate"),
    "views.title": ("Innsyn i revisjonssidene", "Views of the audit pages"),
    "views.who": ("Hvem", "Who"),
    "views.path": ("Side", "Page"),
    "views.query": ("Søk", "Query"),
    "views.allowed": ("Tilgang", "Access"),
    "yes": ("Ja", "Yes"),
    "no": ("Nei", "No"),
    "role.privacy_officer": ("Personvernombud", "Privacy officer"),
    "role.operator": ("Drift", "Operator"),
}

CATEGORY_NB = {
    "kopp": "kartlegging og oppfølgingsplan",
    "health": "helseopplysninger",
    "school": "skoleopplysninger",
    "barnevern": "barnevernsopplysninger",
    "identity": "identitetsopplysninger",
    "settlement": "opplysninger til bosetting",
}
CATEGORY_EN = {
    "kopp": "mapping and follow-up plan",
    "health": "health information",
    "school": "school information",
    "barnevern": "child welfare information",
    "identity": "identity information",
    "settlement": "settlement information",
}


def translator(lang: str) -> Any:
    i = LANGS.index(lang) if lang in LANGS else 0

    def t(key: str, **kw: Any) -> str:
        pair = TEXT.get(key)
        text = pair[i] if pair else key
        return text.format(**kw) if kw else text

    return t


def category(value: str, lang: str) -> str:
    return (CATEGORY_EN if lang == "en" else CATEGORY_NB).get(value, value)


def basis_plain(basis: str | None, legal: dict[str, Any], lang: str) -> str:
    """A legal basis as a sentence for the child and the representative."""
    if not basis:
        return (
            "No legal basis: nothing was shared."
            if lang == "en"
            else "Ikke noe rettsgrunnlag: ingenting ble delt."
        )
    kind, _, ident = basis.partition(":")
    if kind == "consent":
        return (
            f"Consent given for this sharing (consent {ident})."
            if lang == "en"
            else f"Samtykke til akkurat denne delingen (samtykke {ident})."
        )
    if kind == "statute":
        s = legal.get("statutes", {}).get(ident, {})
        title, ref = s.get("title_nb", ident), s.get("ref", "")
        return (
            f"The law requires or allows it: {title} ({ref})."
            if lang == "en"
            else f"Loven krever eller tillater det: {title} ({ref})."
        )
    if kind == "break_the_glass":
        ref = legal.get("break_the_glass", {}).get("ref", "")
        return (
            f"An emergency; the sharing is reviewed afterwards ({ref})."
            if lang == "en"
            else f"En nødsituasjon; delingen kontrolleres i etterkant ({ref})."
        )
    return basis
