#!/usr/bin/env python3
"""Generates data/pec/sample.jsonl: fictitious certified e-mail (PEC) messages to an INPS office,
labelled with the office queue competent for them. Deterministic (fixed seed): running it again
rewrites the same file. See data/pec/README.md.

    python3 data/pec/generate.py > data/pec/sample.jsonl
"""

import json
import random

SEED = 20261122
PER_LABEL = 58

NOMI = ["Giulia", "Marco", "Francesca", "Luca", "Anna", "Paolo", "Chiara", "Davide", "Elena", "Stefano", "Sara", "Andrea",
        "Valentina", "Giorgio", "Martina", "Roberto", "Ilaria", "Fabio", "Silvia", "Antonio", "Rosa", "Salvatore", "Teresa"]
COGNOMI = ["Esposito", "Bianchi", "Ferraro", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "Costa",
           "Mancini", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro", "Mariani", "Rinaldi", "Caruso", "Ferri"]
CITTA = ["Roma", "Milano", "Napoli", "Torino", "Palermo", "Bari", "Bologna", "Firenze", "Catania", "Verona", "Padova",
         "Cagliari", "Lecce", "Perugia", "Ancona", "Trento", "Salerno", "Brescia"]
AZIENDE = ["Edil Costruzioni S.r.l.", "Trasporti Adriatici S.p.A.", "Ristorante Il Gabbiano S.a.s.", "Alfa Meccanica S.r.l.",
           "Cooperativa Sociale Aurora", "Studio Tecnico Associato", "Panificio Moderno di Gallo & C.", "Logistica Nord S.r.l.",
           "Tessile Veneta S.p.A.", "Hotel Belvedere S.r.l."]
MESI = ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "settembre", "ottobre", "novembre", "dicembre"]


def person(r):
    return f"{r.choice(NOMI)} {r.choice(COGNOMI)}"


def date(r):
    return f"{r.randint(1, 28)} {r.choice(MESI)} {r.choice([2024, 2025, 2026])}"


def protocol(r):
    return f"INPS.{r.randint(1000, 9999)}.{r.randint(10, 12)}/{r.choice([2025, 2026])}.{r.randint(1000000, 9999999)}"


def amount(r):
    return f"{r.randint(80, 4000)},{r.randint(0, 99):02d} euro"


# Per label: subjects and content sentences. {p} person, {d} date, {n} protocol, {a} amount,
# {c} city, {z} company.
TOPICS = {
    "naspi": {
        "subjects": ["Domanda NASpI - richiesta informazioni", "NASpI non ancora pagata", "Sollecito pagamento indennità di disoccupazione",
                     "Comunicazione reddito presunto NASpI", "NASpI anticipata in unica soluzione", "Licenziamento e domanda di disoccupazione",
                     "Sospensione NASpI per nuovo contratto", "Domanda NASpI n. {n}", "richiesta stato pratica disoccupazione",
                     "DIS-COLL collaboratore - domanda", "Modello NASpI-Com", "Naspi decaduta?"],
        "sentences": [
            'mi hanno mandato via dal lavoro a fine {m} e non so come fare la richiesta per la disoccupazione',
            'sono senza lavoro da due mesi e i soldi della naspi non arrivano, come posso fare?',
            "il centro per l'impiego mi dice di rivolgermi a voi per l'indennità, ho firmato la DID il {d}",
            'ho trovato un lavoretto a chiamata, devo comunicarlo per non perdere la disoccupazione?',
            "l'azienda ha chiuso e siamo stati tutti licenziati, chiedo come presentare la domanda di indennità",

            "ho presentato domanda di NASpI il {d} dopo il licenziamento e a oggi non ho ricevuto alcun pagamento",
            "il mio contratto a tempo determinato è scaduto il {d} e vorrei sapere se ho diritto all'indennità di disoccupazione",
            "comunico con il modello NASpI-Com il reddito presunto derivante dalla nuova attività lavorativa iniziata il {d}",
            "chiedo la liquidazione anticipata della NASpI in unica soluzione per avviare un'attività di lavoro autonomo",
            "sono stato assunto con un contratto di sei mesi e chiedo la sospensione dell'indennità di disoccupazione",
            "la domanda di NASpI risulta respinta per mancanza del requisito delle tredici settimane di contribuzione",
            "ho rassegnato le dimissioni per giusta causa per mancato pagamento degli stipendi e chiedo la NASpI",
            "il pagamento della disoccupazione di {m} non è stato accreditato sul mio conto corrente",
            "l'importo della NASpI accreditato è inferiore a quello calcolato, chiedo il dettaglio della retribuzione media",
            "vorrei sapere per quante settimane mi spetta l'indennità di disoccupazione dopo la cessazione del rapporto",
            "segnalo la variazione dell'IBAN su cui accreditare la NASpI",
            "ho ricevuto comunicazione di decadenza dalla NASpI per mancata partecipazione al patto di servizio presso il centro per l'impiego",
            "in qualità di collaboratore coordinato e continuativo chiedo informazioni sulla domanda di DIS-COLL",
            "la risoluzione consensuale è avvenuta in sede di conciliazione ai sensi dell'art. 7 L. 604/1966, chiedo conferma del diritto alla NASpI",
        ],
    },
    "pensioni": {
        "subjects": ["Domanda di pensione di vecchiaia", "Ricostituzione pensione", "Pensione anticipata - requisiti", "Cedolino pensione di {m}",
                     "Pensione di reversibilità", "Richiesta ricalcolo pensione", "Quota 103 - informazioni", "Pensione non accreditata",
                     "Trattenute sul rateo di pensione", "Supplemento di pensione", "APE sociale - domanda", "Totalizzazione periodi contributivi"],
        "sentences": [
            "mio padre è in pensione da gennaio ma l'importo è più basso di quello che gli avevano detto",
            'volevo sapere quando posso andare in pensione, ho 63 anni e lavoro da quando ne avevo 20',
            "la quattordicesima sulla pensione quest'anno non è stata pagata",
            "ho cambiato banca e devo comunicare il nuovo conto per l'accredito della pensione",
            'mia madre è mancata il {d} e dobbiamo sapere cosa fare per il rateo di pensione non riscosso',

            "compirò 67 anni il {d} e chiedo informazioni sulla domanda di pensione di vecchiaia",
            "chiedo la ricostituzione della pensione per il riconoscimento di periodi contributivi non considerati",
            "il rateo di pensione del mese di {m} non è stato accreditato",
            "in seguito al decesso del coniuge avvenuto il {d} chiedo la pensione ai superstiti (reversibilità)",
            "sul cedolino della pensione compare una trattenuta di {a} di cui non conosco la causale",
            "vorrei conoscere la data di decorrenza della mia pensione anticipata con 42 anni e 10 mesi di contributi",
            "chiedo di sapere se posso accedere a Quota 103 o all'APE sociale",
            "sono titolare di pensione e chiedo il supplemento per i contributi versati dopo il pensionamento",
            "chiedo il ricalcolo della pensione con il riconoscimento della maggiorazione sociale",
            "chiedo la totalizzazione dei periodi versati in gestioni previdenziali diverse ai fini della pensione",
            "sono pensionato residente all'estero e devo inviare la certificazione di esistenza in vita",
            "la pensione è stata sospesa senza alcuna comunicazione preventiva",
            "vorrei sapere l'importo della pensione di inabilità del dipendente pubblico",
            "chiedo il rimborso delle trattenute IRPEF applicate due volte sulla pensione",
        ],
    },
    "contributi-aziende": {
        "subjects": ["Flusso UniEmens - scarto", "DURC irregolare", "Rateizzazione debiti contributivi", "Avviso di addebito {n}",
                     "Denuncia contributiva mensile", "Sgravio contributivo assunzioni", "Richiesta regolarizzazione contributi",
                     "Matricola aziendale - variazione", "Cassetto previdenziale aziende", "Esonero contributivo", "F24 contributi errato",
                     "Cassa integrazione - pagamento diretto"],
        "sentences": [
            'siamo una piccola impresa artigiana e non riusciamo a scaricare il DURC dal portale',
            'il nostro dipendente risulta senza contributi per {m} ma noi abbiamo pagato regolarmente con F24',
            'chiediamo chi è il referente per la posizione contributiva della ditta dopo la fusione societaria',
            "abbiamo assunto un apprendista e vorremmo sapere l'aliquota contributiva agevolata da applicare",
            "la nostra matricola è stata sospesa d'ufficio e non possiamo inviare le denunce mensili",

            "il flusso UniEmens del mese di {m} trasmesso dalla {z} è stato scartato per errore nella sezione PosContributiva",
            "la {z} risulta con DURC irregolare nonostante il pagamento dei contributi effettuato il {d}",
            "chiediamo la rateizzazione del debito contributivo di {a} in ventiquattro rate mensili",
            "abbiamo ricevuto l'avviso di addebito n. {n} per contributi che risultano già versati con F24",
            "in qualità di consulente del lavoro della {z} chiedo la variazione della matricola aziendale per cambio di sede",
            "chiediamo il riconoscimento dell'esonero contributivo per le assunzioni di giovani under 30 effettuate nel {m}",
            "nel cassetto previdenziale aziende risulta un debito per contributi del personale dipendente non dovuto",
            "il datore di lavoro ha versato con F24 un codice tributo errato e chiede la compensazione dei contributi",
            "la {z} chiede il pagamento diretto della cassa integrazione guadagni ordinaria ai dipendenti",
            "chiediamo l'annullamento delle sanzioni civili per ritardato versamento dei contributi",
            "trasmettiamo la denuncia contributiva corretta per i lavoratori dipendenti del mese di {m}",
            "la sede di {c} ci ha notificato una diffida per omesso versamento delle ritenute previdenziali",
            "chiediamo chiarimenti sul conguaglio del TFR al fondo di tesoreria nel flusso UniEmens",
        ],
    },
    "invalidita-civile": {
        "subjects": ["Invalidità civile - visita di revisione", "Verbale commissione medica", "Indennità di accompagnamento",
                     "Legge 104 - accertamento handicap", "Assegno mensile di assistenza invalidi", "Domanda invalidità civile n. {n}",
                     "Convocazione a visita medica", "Aggravamento invalidità", "Pagamento pensione di invalidità civile", "Modello AP70"],
        "sentences": [
            "ho fatto la visita alla ASL tre mesi fa e non ho ancora saputo niente dell'esito",
            "mio marito ha l'alzheimer e ha bisogno di assistenza continua, come si chiede l'accompagnamento?",
            'la commissione mi ha dato il 60% ma io non riesco più a lavorare per la mia malattia',
            'chiedo il rinvio della visita di controllo perché sono in terapia oncologica',
            "non mi è ancora arrivato l'assegno di invalidità dopo il riconoscimento",

            "ho ricevuto la convocazione a visita di revisione dell'invalidità civile per il {d} ma sono ricoverato",
            "chiedo copia del verbale della commissione medica integrata che mi ha riconosciuto un'invalidità del 75%",
            "mia madre è allettata e chiediamo l'indennità di accompagnamento con visita domiciliare",
            "chiedo l'accertamento dello stato di handicap grave ai sensi dell'art. 3 comma 3 della legge 104/1992",
            "ho inviato il modello AP70 con i dati reddituali ma l'assegno mensile di assistenza non viene pagato",
            "chiedo la visita per aggravamento poiché le mie condizioni di salute sono peggiorate",
            "il certificato medico introduttivo è stato trasmesso dal medico curante il {d}",
            "la pensione di inabilità civile è stata sospesa in attesa della verifica sanitaria",
            "chiedo il riconoscimento della sordità e della cecità parziale ai fini delle provvidenze economiche",
            "il verbale di invalidità riporta una percentuale inferiore a quella indicata dalla documentazione sanitaria",
            "chiedo lo spostamento della visita medica presso la commissione di {c}",
            "mio figlio minore ha diritto all'indennità di frequenza e chiedo lo stato della domanda",
        ],
    },
    "ricorsi-legale": {
        "subjects": ["Diffida e messa in mora", "Ricorso amministrativo al Comitato provinciale", "Atto di citazione - notifica",
                     "Ricorso ex art. 442 c.p.c.", "Diffida ad adempiere - pratica {n}", "Sentenza del Tribunale di {c} - esecuzione",
                     "Istanza di autotutela", "Accertamento tecnico preventivo", "Notifica atto giudiziario", "Richiesta di conciliazione",
                     "Decreto ingiuntivo", "Atto di precetto"],
        "sentences": [
            "in riscontro alla nota di codesto Istituto si contesta integralmente quanto affermato e si insiste per l'accoglimento del ricorso",
            "il giudice del lavoro ha condannato l'Istituto al pagamento delle differenze, si chiede di dare esecuzione al dispositivo",
            'si comunica che il sottoscritto difensore ha ricevuto mandato a rappresentare il ricorrente in ogni fase del giudizio',
            'si chiede copia integrale del fascicolo amministrativo ai fini della costituzione in giudizio',
            'si notifica atto di pignoramento presso terzi',

            "in nome e per conto del mio assistito {p} diffido codesto Istituto a provvedere entro trenta giorni, in difetto adirò le vie legali",
            "si notifica il ricorso presentato al Tribunale di {c} in funzione di giudice del lavoro",
            "con la presente si propone ricorso amministrativo al Comitato provinciale avverso il provvedimento di rigetto del {d}",
            "si chiede l'esecuzione della sentenza n. {r}/{y} del Tribunale di {c} passata in giudicato",
            "la scrivente avvocata chiede l'annullamento in autotutela del provvedimento per manifesta illegittimità",
            "si deposita ricorso per accertamento tecnico preventivo ai sensi dell'art. 445-bis c.p.c.",
            "si intima il pagamento delle somme liquidate in sentenza oltre interessi legali e spese, con avvertimento che in mancanza si procederà a esecuzione forzata",
            "lo studio legale scrivente costituisce in mora l'Istituto per il mancato pagamento della prestazione riconosciuta in giudizio",
            "si trasmette il decreto ingiuntivo notificato in data {d} con formula esecutiva",
            "l'udienza è fissata per il {d} dinanzi alla Corte d'Appello di {c}, sezione lavoro",
            "con la presente il patrocinatore chiede la definizione conciliativa della controversia pendente",
            "si contesta la legittimità del provvedimento di recupero dell'indebito e si chiede la sospensione in pendenza del ricorso",
        ],
    },
    "prestazioni-famiglia": {
        "subjects": ["Assegno unico universale - importo", "Congedo di maternità", "Assegno unico non pagato", "Congedo parentale",
                     "Bonus asilo nido", "Variazione ISEE per assegno unico", "Congedo di paternità obbligatorio", "Domanda assegno unico n. {n}",
                     "Maternità lavoratrice autonoma", "Figli a carico - assegno unico", "Indennità di maternità non pagata", "Bonus nuovi nati"],
        "sentences": [
            'è nata mia figlia il {d}, cosa devo fare per avere i soldi per i figli?',
            "da quando mi sono separata l'assegno per i bambini lo prende tutto il mio ex marito",
            'sono incinta di sette mesi e lavoro in un negozio, come chiedo la maternità?',
            "il mio datore di lavoro dice che il congedo per il papà lo paga l'INPS, è vero?",
            'il bonus per la retta del nido di mio figlio risulta ancora in istruttoria',

            "l'assegno unico universale per i miei due figli non è stato pagato nel mese di {m}",
            "l'importo dell'assegno unico è stato calcolato senza tenere conto del nuovo ISEE presentato il {d}",
            "chiedo l'indennità di maternità per il congedo obbligatorio iniziato il {d}",
            "sono un lavoratore dipendente e chiedo informazioni sul congedo di paternità obbligatorio di dieci giorni",
            "ho presentato domanda di bonus asilo nido ma il rimborso della retta di {m} non è arrivato",
            "vorrei aggiungere il terzo figlio nato il {d} alla domanda di assegno unico",
            "chiedo il congedo parentale per mia figlia di due anni e la relativa indennità",
            "la maggiorazione per figlio con disabilità non è stata riconosciuta nell'assegno unico",
            "sono una lavoratrice autonoma iscritta alla gestione separata e chiedo l'indennità di maternità",
            "l'assegno unico viene accreditato all'altro genitore e chiediamo la ripartizione al cinquanta per cento",
            "chiedo il bonus per i nuovi nati per il bambino nato a {c} il {d}",
            "chiedo i riposi giornalieri per allattamento e l'indennità spettante",
        ],
    },
    "certificazioni": {
        "subjects": ["Richiesta Certificazione Unica {y}", "Estratto conto contributivo", "Duplicato CU pensione", "Certificato di pensione ObisM",
                     "Richiesta estratto contributivo", "Attestazione ISEE - DSU", "Certificazione dei redditi", "Dichiarazione sostitutiva unica errata",
                     "Certificato di servizio", "Modello CU non ricevuto"],
        "sentences": [
            'mi serve un documento con tutti i contributi versati per fare domanda di mutuo',
            'non riesco a stampare la CU dal sito, mi dice che il servizio non è disponibile',
            'la banca mi chiede un certificato INPS che attesti quanto prendo di pensione al mese',
            'devo fare il 730 e mi manca la certificazione di quanto ho preso di disoccupazione',
            "il CAF dice che nell'ISEE c'è un'omissione e bisogna rifare la dichiarazione",

            "chiedo l'invio della Certificazione Unica {y} relativa alla pensione, che non riesco a scaricare",
            "chiedo l'estratto conto contributivo aggiornato per verificare i periodi lavorati presso la {z}",
            "ho bisogno del modello ObisM per presentarlo alla banca",
            "l'attestazione ISEE rilasciata il {d} contiene un errore nel patrimonio mobiliare della DSU",
            "chiedo il duplicato della CU relativa all'indennità percepita nell'anno precedente per la dichiarazione dei redditi",
            "nell'estratto conto risultano mancanti i contributi del periodo da {m} a {m2}, chiedo la certificazione aggiornata",
            "chiedo un certificato che attesti i periodi di contribuzione figurativa per servizio militare",
            "il commercialista ha bisogno della certificazione dei redditi da pensione per il modello 730",
            "chiedo la rettifica della DSU perché il nucleo familiare indicato non è corretto",
            "chiedo il rilascio della certificazione del diritto a pensione per la domanda di cessione del quinto",
            "non ho ricevuto la CU dell'indennità di disoccupazione e non riesco ad accedere al servizio online",
            "chiedo l'estratto conto certificativo ai fini del riscatto della laurea",
        ],
    },
    "altro": {
        "subjects": ["Informazioni", "Richiesta appuntamento", "Segnalazione malfunzionamento sito", "Ricevuta di consegna",
                     "Offerta commerciale servizi di digitalizzazione", "Newsletter", "Candidatura spontanea", "Richiesta generica",
                     "Reclamo orari sportello", "Invio documentazione", "Accesso agli atti", "Invito a convegno"],
        "sentences": [
            'buongiorno, a chi mi devo rivolgere per una informazione generale?',
            'non ho capito la vostra lettera, potete chiamarmi?',
            'si comunica il cambio di indirizzo PEC della scrivente associazione',
            'vi segnalo un messaggio sospetto ricevuto a nome INPS che chiede i dati della carta di credito',
            "si chiede il patrocinio gratuito dell'Istituto per una manifestazione sportiva",

            "vorrei prenotare un appuntamento allo sportello della sede di {c}",
            "il sito non mi permette di accedere con lo SPID, compare un errore generico",
            "vi proponiamo i nostri servizi di dematerializzazione documentale a condizioni vantaggiose per la pubblica amministrazione",
            "invio in allegato il mio curriculum vitae per eventuali posizioni aperte",
            "segnalo che lo sportello di {c} apre con ritardo e le attese sono lunghissime",
            "vi invitiamo al convegno sulla digitalizzazione della pubblica amministrazione che si terrà a {c} il {d}",
            "chiedo l'accesso agli atti ai sensi della legge 241/1990 relativi al procedimento di gara per la fornitura di arredi",
            "questo messaggio è stato inviato per errore, vi prego di ignorarlo",
            "chiedo il numero di telefono dell'ufficio relazioni con il pubblico",
            "si trasmette la ricevuta di avvenuta consegna del messaggio precedente",
            "vorrei sapere come cambiare la password del PIN dispositivo che non uso più",
            "segnaliamo la disponibilità di locali in affitto nel centro di {c} adatti a uffici pubblici",
            "in allegato la fattura elettronica per la fornitura di materiale di cancelleria",
        ],
    },
}

SENDERS = {
    "citizen": (["Gentili signori,", "Spett.le INPS,", "Buongiorno,", "Egregi,", "Alla c.a. della Sede INPS di {c},", "Salve,"],
                ["Cordiali saluti,", "Distinti saluti", "In attesa di riscontro, saluto cordialmente.", "Grazie, saluti.", "Resto in attesa di una risposta."],
                "Io sottoscritto/a {p}, "),
    "patronato": (["Spett.le Sede INPS di {c},", "All'INPS - Direzione provinciale di {c}"],
                  ["Il Patronato - sede di {c}", "Cordiali saluti, l'operatore del patronato"],
                  "per conto dell'assistito {p}, "),
    "lawyer": (["Spett.le Istituto Nazionale della Previdenza Sociale,", "All'INPS - Sede di {c} - Ufficio legale"],
               ["Avv. {p}", "Distinti saluti, avv. {p}", "Studio Legale {s}"],
               ""),
    "company": (["Spett.le INPS - Direzione provinciale di {c},", "Alla cortese attenzione dell'ufficio aziende,"],
                ["{z} - Ufficio del personale", "Il consulente del lavoro, {p}", "Il legale rappresentante della {z}"],
                "la scrivente {z}, "),
}

SENDER_WEIGHTS = {
    "naspi": ["citizen"] * 5 + ["patronato"] * 2,
    "pensioni": ["citizen"] * 5 + ["patronato"] * 2,
    "contributi-aziende": ["company"] * 6 + ["citizen"],
    "invalidita-civile": ["citizen"] * 4 + ["patronato"] * 2,
    "ricorsi-legale": ["lawyer"] * 6 + ["patronato"],
    "prestazioni-famiglia": ["citizen"] * 5 + ["patronato"],
    "certificazioni": ["citizen"] * 5 + ["patronato"],
    "altro": ["citizen"] * 4 + ["company"] * 2,
}


# Ways the same thing is said: a word of the template is replaced by one of its variants.
SYNONYMS = {
    "chiedo": ["chiedo", "richiedo", "domando", "sollecito", "vorrei ottenere"],
    "pagamento": ["pagamento", "accredito", "versamento", "erogazione"],
    "non è stato accreditato": ["non è stato accreditato", "non risulta pagato", "non è mai arrivato", "manca ancora"],
    "domanda": ["domanda", "istanza", "richiesta", "pratica"],
    "informazioni": ["informazioni", "chiarimenti", "delucidazioni", "notizie"],
    "contributi": ["contributi", "versamenti previdenziali", "contributi previdenziali"],
    "indennità": ["indennità", "prestazione", "sussidio"],
    "mese di": ["mese di", "mese scorso,", "rateo di"],
    "vorrei sapere": ["vorrei sapere", "desidero conoscere", "chiedo di conoscere", "mi potete dire"],
    "verbale": ["verbale", "esito", "giudizio"],
    "figli": ["figli", "bambini", "ragazzi"],
}

# Vague messages: the subject or the body alone does not say which office (a person decides).
VAGUE = ["in allegato la documentazione relativa alla pratica in oggetto",
         "con riferimento alla vostra comunicazione chiedo un riscontro urgente",
         "non ho ancora ricevuto risposta alla mia precedente comunicazione",
         "vi prego di contattarmi al più presto per la mia situazione",
         "trasmetto quanto richiesto dal vostro ufficio"]


def vary(r, text):
    for word, variants in SYNONYMS.items():
        if word in text and r.random() < 0.6:
            text = text.replace(word, r.choice(variants), 1)
    return text


def typo(r, text):
    """A few realistic slips: a dropped, doubled or swapped letter, missing accents."""
    words = text.split(" ")
    for _ in range(r.randint(1, 3)):
        i = r.randrange(len(words))
        w = words[i]
        if len(w) < 5:
            continue
        j = r.randrange(1, len(w) - 2)
        kind = r.random()
        if kind < 0.35:
            w = w[:j] + w[j + 1:]
        elif kind < 0.6:
            w = w[:j] + w[j] + w[j:]
        elif kind < 0.85:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        else:
            w = w.replace("à", "a'").replace("è", "e'").replace("ò", "o'").replace("ù", "u'")
        words[i] = w
    return " ".join(words)


def fill(r, text):
    return text.format(p=person(r), d=date(r), n=protocol(r), a=amount(r), c=r.choice(CITTA), z=r.choice(AZIENDE),
                       m=r.choice(MESI), m2=r.choice(MESI), y=r.choice([2024, 2025, 2026]), r=r.randint(100, 3000),
                       s=r.choice(COGNOMI) + " & " + r.choice(COGNOMI))


def message(r, label, index):
    topic = TOPICS[label]
    sender = r.choice(SENDER_WEIGHTS[label])
    openings, closings, intro = SENDERS[sender]
    sentences = r.sample(topic["sentences"], k=r.choice([1, 1, 1, 2, 2, 3]))
    # About one message in four also mentions another office's matter, sometimes first.
    if r.random() < 0.25:
        other = r.choice([k for k in TOPICS if k != label and k != "altro"])
        aside = r.choice(TOPICS[other]["sentences"])
        if r.random() < 0.3:
            sentences.insert(0, "premetto che " + aside)
        else:
            sentences.append(r.choice(["inoltre ", "segnalo anche che ", "colgo l'occasione per dire che "]) + aside)
    # Some say little beyond the subject.
    if r.random() < 0.12:
        sentences = [r.choice(VAGUE)]
    body_sentences = []
    for i, s in enumerate(sentences):
        s = vary(r, fill(r, s))
        if i == 0 and intro and r.random() < 0.7:
            s = fill(r, intro) + s
        body_sentences.append(s[0].upper() + s[1:] + ".")
    body = fill(r, r.choice(openings)) + "\n" + " ".join(body_sentences)
    if r.random() < 0.4:
        body += " " + r.choice(["Allego copia del documento di identità.", "Si allega la documentazione.", "Codice fiscale in allegato.",
                                "Chiedo cortese riscontro.", "Vi ringrazio per l'attenzione.", "Resto a disposizione per chiarimenti."])
    body += "\n" + fill(r, r.choice(closings))
    subject = vary(r, fill(r, r.choice(topic["subjects"])))
    if r.random() < 0.08:
        subject = r.choice(["Richiesta", "Comunicazione", "Sollecito", "Pratica {n}", "Urgente", ""]).format(n=protocol(r))
    if r.random() < 0.25:
        subject = r.choice(["PEC: ", "POSTA CERTIFICATA: ", "R: ", "I: ", "Fwd: "]) + subject
    if r.random() < 0.2:
        subject = subject.upper() if r.random() < 0.5 else subject.lower()
    if r.random() < 0.15:
        body = typo(r, body)
    return {"id": f"pec-{label}-{index:03d}", "subject": subject, "body": body, "label": label, "sender": sender}


# Messages written whole, not from the templates above: their own wording, length and order,
# some with two or three matters at once (labelled by the main request: the office that must
# act). `generate.py` adds them as they are (ids pec-libero-NNN).
FREE = [
    # naspi
    ("naspi", "citizen", "ciao",
     "buongiorno scusate se scrivo qui ma al telefono non risponde nessuno. lavoravo in un bar fino a settembre, il titolare ha venduto e il nuovo non mi ha tenuta. mi hanno detto che mi spetta qualcosa ma sul sito non trovo dove si fa. grazie mille\nLucia"),
    ("naspi", "citizen", "soldi di ottobre",
     "Sono tre settimane che aspetto la mensilità di ottobre. Quella di settembre era arrivata il 15. Nel fascicolo la domanda risulta 'in pagamento' ma sul conto non c'è niente. Ho due figli e l'affitto da pagare, vi chiedo di verificare."),
    ("naspi", "patronato", "Prot. 2211 - posizione sig. Ferri",
     "Si trasmette per l'assistito in oggetto la comunicazione di rioccupazione con contratto intermittente dal 3 novembre, reddito annuo presunto 4.200 euro, ai fini della riduzione dell'indennità in corso. Si chiede conferma della corretta acquisizione."),
    ("naspi", "citizen", "Disoccupazione e assegno unico",
     "Buonasera, da agosto sono disoccupato e prendo la NASpI, ma l'ultimo pagamento è stato sospeso senza spiegazione. Già che ci sono: l'assegno unico per mio figlio va aggiornato con il nuovo ISEE? La cosa urgente però è la sospensione della disoccupazione, senza quella non arrivo a fine mese."),
    ("naspi", "citizen", "",
     "Mi sono licenziato per giusta causa perché non mi pagavano da quattro mesi, ho anche fatto causa all'azienda tramite avvocato. Posso comunque avere la disoccupazione mentre aspetto la sentenza?"),
    # pensioni
    ("pensioni", "citizen", "mia madre",
     "Mia madre ha 81 anni e da questo mese le arriva quasi cento euro in meno. Non ha cambiato niente. Lei non sa usare il computer, potete spiegarmi voi cosa è successo? Sono la figlia, allego la delega."),
    ("pensioni", "citizen", "quando smetto?",
     "Ho cominciato a lavorare a 17 anni in fabbrica, poi qualche anno in nero (purtroppo) e dal 1995 sempre regolare. Adesso ne ho 61. Vorrei capire se posso uscire prima dei 67 e con quanto. Sul sito il simulatore mi dà numeri strani."),
    ("pensioni", "patronato", "Decesso titolare - ratei",
     "Comunichiamo il decesso del sig. Bruno avvenuto il 4 del mese corrente. La vedova, nostra assistita, chiede il trattamento ai superstiti e il pagamento dei ratei maturati e non riscossi. Documentazione in allegato."),
    ("pensioni", "citizen", "pensione e invalidità",
     "Buongiorno, sono pensionato da due anni e sono anche invalido al 75%. Vorrei sapere perché sul cedolino di quest'anno mi hanno tolto la maggiorazione sociale che prendevo prima. La visita per l'invalidità l'ho già fatta e non è cambiato niente, quindi il problema è la pensione."),
    ("pensioni", "lawyer", "Richiesta chiarimenti - trattenute",
     "Scrivo per conto del sig. Gallo, pensionato, al quale da aprile viene trattenuto un quinto del rateo senza che gli sia stato notificato alcun provvedimento. Prima di valutare altre iniziative chiedo di conoscere titolo e importo del recupero."),
    # contributi-aziende
    ("contributi-aziende", "company", "DURC irregolare??",
     "Ci serve il DURC per una gara che scade venerdì e risulta irregolare, ma i contributi di settembre li abbiamo versati il 16 come sempre. Abbiamo il quietanzato dell'F24. Chi può sistemare in tempi brevi?"),
    ("contributi-aziende", "company", "re: scarti",
     "Il consulente dice che la denuncia di ottobre è stata scartata per un codice sbagliato su due dipendenti part-time. L'abbiamo rinviata ma non sappiamo se è andata a buon fine, nel cassetto previdenziale non si vede niente."),
    ("contributi-aziende", "company", "Cassa integrazione e pagamento diretto",
     "Per il calo di commesse abbiamo messo 12 operai in cassa integrazione ordinaria per tre settimane. La domanda è stata autorizzata, ma i lavoratori chiedono quando arriva il pagamento diretto. Dobbiamo mandare noi i modelli SR41 o li mandano loro?"),
    ("contributi-aziende", "company", "avviso di addebito - dilazione",
     "Abbiamo ricevuto un avviso di addebito per contributi 2023 di circa 18.000 euro. Non contestiamo l'importo ma non possiamo pagarlo in un'unica soluzione. Chiediamo di poter rateizzare. Il legale rappresentante"),
    # invalidita-civile
    ("invalidita-civile", "citizen", "visita mai fatta",
     "a marzo il medico ha mandato il certificato per mio figlio autistico, sono passati otto mesi e della visita non si sa niente. nel frattempo a scuola ci chiedono il verbale per il sostegno. cosa devo fare?"),
    ("invalidita-civile", "citizen", "verbale",
     "Mi è arrivato il verbale con il 67% ma io non riesco più a camminare senza stampella e ho fatto due operazioni. Non sono d'accordo. Come si fa a chiedere di essere rivisto?"),
    ("invalidita-civile", "patronato", "Aggravamento - assistita Rosa Greco",
     "L'assistita, già riconosciuta invalida al 100%, ha avuto un peggioramento e non è più in grado di compiere da sola gli atti quotidiani. Si chiede visita di aggravamento ai fini dell'indennità di accompagnamento. Certificato medico introduttivo n. 4471."),
    ("invalidita-civile", "citizen", "permessi per mia madre e pensione",
     "Mia madre prende la pensione di reversibilità e ha appena avuto un ictus. Io lavoro e vorrei i permessi per assisterla, ma mi dicono che prima serve il riconoscimento dell'handicap grave. Come si chiede la visita in tempi brevi? La pensione va bene così, non va toccata."),
    # ricorsi-legale
    ("ricorsi-legale", "lawyer", "Sig.ra Fontana c/ INPS",
     "Egregi, a seguito del silenzio serbato sulla domanda di riesame presentata il 2 luglio, comunico che in assenza di un provvedimento entro quindici giorni depositerò ricorso al giudice del lavoro, con aggravio di spese."),
    ("ricorsi-legale", "lawyer", "notifica",
     "Si notifica ai sensi della L. 53/1994 copia conforme della sentenza del Tribunale di Lecce n. 812/2026, passata in giudicato, con la quale l'Istituto è condannato al pagamento delle prestazioni arretrate oltre interessi legali."),
    ("ricorsi-legale", "citizen", "voglio fare ricorso",
     "Mi avete rifiutato la disoccupazione dicendo che mancano i contributi, ma il datore di lavoro li doveva versare lui. Ho già sentito un avvocato e voglio fare ricorso contro il vostro provvedimento. Entro quando devo presentarlo e a chi?"),
    ("ricorsi-legale", "company", "pignoramento presso terzi",
     "In qualità di terzo pignorato, la scrivente società trasmette la dichiarazione ex art. 547 c.p.c. relativa al dipendente indicato nell'atto notificato dall'Istituto il 10 ottobre."),
    # prestazioni-famiglia
    ("prestazioni-famiglia", "citizen", "è nata!",
     "Buongiorno, è nata nostra figlia Sofia il 3 novembre. Cosa dobbiamo fare per l'assegno unico? Lo prendiamo già per il fratello, basta aggiungerla? Io lavoro come dipendente e mio marito è autonomo."),
    ("prestazioni-famiglia", "citizen", "congedo papà",
     "Mio marito vorrebbe prendere i dieci giorni dopo il parto ma l'azienda dice che deve chiedere a voi. Lui è dipendente privato. Grazie"),
    ("prestazioni-famiglia", "citizen", "Assegno ridotto dopo la NASpI",
     "Ho finito la NASpI a giugno e da luglio l'assegno unico dei miei due figli è sceso di quasi 60 euro al mese. Il mio ISEE è rimasto lo stesso. Il problema non è la disoccupazione, che è finita, ma l'assegno per i bambini: potete ricontrollarlo?"),
    ("prestazioni-famiglia", "citizen", "nido",
     "ho pagato le rette del nido comunale da settembre a dicembre ma la domanda del bonus mi dice che manca la ricevuta di gennaio, che però non esiste perché a gennaio mio figlio non era ancora iscritto. come la completo?"),
    # certificazioni
    ("certificazioni", "citizen", "mi serve per il 730",
     "Il CAF mi chiede la certificazione unica della disoccupazione dell'anno scorso per fare il 730. Nel sito non la trovo. Potete mandarmela qui in PEC?"),
    ("certificazioni", "citizen", "contributi versati",
     "Devo fare domanda di mutuo e la banca vuole un documento che dica quanti anni di contributi ho. Non mi serve andare in pensione, solo il foglio. Come lo ottengo?"),
    ("certificazioni", "patronato", "ObisM anno corrente",
     "Per l'assistito titolare di pensione di invalidità si richiede il modello ObisM dell'anno in corso, necessario per la domanda di agevolazione comunale. Il servizio online restituisce errore."),
    ("certificazioni", "citizen", "estratto conto sbagliato",
     "Guardando l'estratto conto contributivo ho visto che mancano i due anni in cui ho lavorato a Torino per una cooperativa. Vorrei che fossero aggiunti, ho le buste paga. Per la pensione è ancora presto, mi interessa solo che il documento sia giusto."),
    # altro
    ("altro", "citizen", "non riesco a entrare",
     "Ho lo SPID nuovo ma quando entro nel vostro sito mi dice 'utente non abilitato'. Con il vecchio PIN entravo. Come risolvo? Devo solo scaricare un documento."),
    ("altro", "citizen", "SMS strano",
     "Mi è arrivato un SMS a nome INPS che dice che devo aggiornare i dati per ricevere un rimborso e c'è un link. Non ho cliccato. È vostro? Se no ve lo segnalo."),
    ("altro", "company", "proposta",
     "Siamo una società di formazione e vorremmo presentarvi il nostro corso sulla comunicazione efficace per il personale di sportello. Possiamo fissare un incontro con il responsabile?"),
    ("altro", "citizen", "orari",
     "Volevo sapere se la sede di via Roma è aperta il sabato mattina o se bisogna prendere appuntamento. E se serve, come si prende?"),
]


def main():
    r = random.Random(SEED)
    out = []
    for label in TOPICS:
        for i in range(PER_LABEL):
            out.append(message(r, label, i))
    for i, (label, sender, subject, body) in enumerate(FREE):
        out.append({"id": f"pec-libero-{i:03d}", "subject": subject, "body": body, "label": label, "sender": sender})
    r.shuffle(out)
    for m in out:
        print(json.dumps(m, ensure_ascii=False))


if __name__ == "__main__":
    main()
