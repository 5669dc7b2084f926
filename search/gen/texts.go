package gen

// langText holds one language's sentence templates and slot words. A
// template's {slot} is replaced by a word of slots[slot]; {n} and {year}
// by numbers.
type langText struct {
	titles, done, results, transfer, proposal, comments, keyMessages []string
	slots                                                            map[string][]string
}

// texts are the templates per language. Never mutated.
var texts = map[string]*langText{
	"en": {
		titles: []string{
			"{practice} for {group}",
			"{practice} in the {sector} sector",
			"How {actor} and {actor2} work together against {form}",
			"Identifying victims of {form} among {group}",
			"{practice}: lessons from {place}",
			"Non-punishment of victims forced into {crime}",
		},
		done: []string{
			"The {actor} and the {actor2} set up {practiceLower} to reach {group} at risk of {form}.",
			"Since {year}, {n} {staff} have been trained to recognise indicators of trafficking in the {sector} sector.",
			"Potential victims are referred to {service} within 48 hours and are offered {support}.",
			"Joint inspections of employers in the {sector} sector were carried out together with the tax authority.",
			"A hotline in several languages lets {group} report exploitation anonymously.",
			"Cases of {form} are investigated by a specialised unit that works closely with prosecutors.",
			"The municipality appointed a coordinator who brings together social services, health services and the police.",
			"Outreach workers visit {sector} workplaces and hand out information about labour rights.",
			"Victims receive a reflection period of at least 90 days, regardless of whether they cooperate with the police.",
			"Online advertisements are screened for signs of recruitment into {form}.",
		},
		results: []string{
			"In the first year {n} potential victims were identified, most of them {group}.",
			"Prosecutions for {form} rose from {n} to {n2} cases.",
			"Victims report more trust in the authorities, and more of them testify in court.",
			"The number of referrals to the national assistance system doubled within two years.",
			"An evaluation in {year} found that staff identify trafficking earlier and more reliably.",
			"Employers in the {sector} sector paid back wages of over {n} thousand euros.",
		},
		transfer: []string{
			"Could be adopted in {place} if the authorities are allowed to share information about individual cases.",
			"Easy to transfer: it needs a trained contact person in each municipality and little funding.",
			"Transferable to other Nordic countries with similar labour inspection mandates.",
			"Needs a legal basis for the reflection period and stable funding for NGOs.",
		},
		proposal: []string{
			"A Nordic network of national anti-trafficking coordinators should share {practiceLower} across borders.",
			"Nordic police and labour inspectors should run joint operations in the {sector} sector.",
			"A common Nordic set of indicators for {form} would make data comparable.",
			"Victims moved between Nordic countries should keep their support when they cross a border.",
		},
		comments: []string{
			"The group discussed whether the model works in sparsely populated areas.",
			"Several participants stressed the role of interpreters.",
			"Contact details are available from the rapporteur with consent.",
		},
		keyMessages: []string{
			"Identification starts with trained frontline staff.",
			"Cooperation between authorities and NGOs is the key to protecting victims.",
			"Labour exploitation must be tackled as trafficking, not only as a labour dispute.",
		},
		slots: map[string][]string{
			"practice": {"Joint inspection teams", "A national referral mechanism", "Multi-agency task forces",
				"Safe houses run by NGOs", "Training in trafficking indicators", "Anonymous hotlines",
				"Specialised police units", "Public procurement clauses", "Peer support groups"},
			"practiceLower": {"joint inspection teams", "a national referral mechanism", "multi-agency task forces",
				"safe houses", "training in trafficking indicators", "anonymous hotlines", "specialised police units"},
			"group": {"migrant workers", "unaccompanied children", "women in prostitution", "asylum seekers",
				"EU nationals", "undocumented people", "young men", "LGBTI people", "seasonal workers"},
			"sector":  {"construction", "cleaning", "agriculture", "restaurant", "berry picking", "transport", "fishing", "beauty salon"},
			"form":    {"labour exploitation", "sexual exploitation", "forced begging", "forced criminality", "forced marriage", "human trafficking"},
			"crime":   {"drug trafficking", "theft", "benefit fraud", "cannabis cultivation"},
			"actor":   {"police", "labour inspectorate", "migration agency", "border guard", "municipality", "prosecution service"},
			"actor2":  {"NGOs", "trade unions", "tax authority", "child protection services", "health services", "national coordinator"},
			"staff":   {"police officers", "labour inspectors", "social workers", "nurses", "teachers", "border guards"},
			"service": {"the national assistance system", "a specialised NGO", "the municipal social services", "a shelter"},
			"support": {"safe accommodation", "legal counselling", "medical care", "an interpreter", "help to return home safely"},
			"place":   {"Iceland", "the Faroe Islands", "Greenland", "Åland", "Denmark", "Norway", "Sweden", "Finland"},
			"n2":      {"41", "57", "63", "88", "112"},
		},
	},
	"sv": {
		titles: []string{
			"Gemensamma kontroller mot människohandel i {sektor}",
			"Stöd till offer för människohandel i {stad}",
			"Utbildning av arbetsgivare om tvångsarbete",
			"Samverkan mellan polisen och socialtjänsten mot människohandeln",
		},
		done: []string{
			"Polisen och Arbetsmiljöverket genomförde gemensamma kontroller hos arbetsgivarna i {sektor}.",
			"Socialtjänsten erbjuder skyddat boende åt offren för människohandeln.",
			"Kommunen har utbildat {n} handläggare i att identifiera offer för människohandel.",
			"En regional samordnare mot människohandel leder samverkan i {stad}.",
			"Arbetsgivaren granskades av Skatteverket efter ett tips från facket.",
		},
		results: []string{
			"{n} personer identifierades som möjliga offer för människohandel.",
			"Arbetsgivaren dömdes för människohandel och ocker.",
			"Fler offer vågar nu vittna i domstol.",
		},
		transfer: []string{
			"Metoden kan användas i andra nordiska länder om myndigheterna får dela information.",
			"Modellen kräver en samordnare i varje region och stabil finansiering.",
		},
		proposal: []string{
			"Ett nordiskt nätverk av nationella samordnare mot människohandel.",
			"Gemensamma nordiska indikatorer för arbetskraftsexploatering.",
		},
		comments:    []string{"Gruppen diskuterade tolkarnas roll.", "Kontaktuppgifter finns hos rapportören."},
		keyMessages: []string{"Samverkan mellan myndigheter och organisationer skyddar offren."},
		slots: map[string][]string{
			"sektor": {"byggbranschen", "städbranschen", "jordbruket", "restaurangbranschen", "bärplockningen"},
			"stad":   {"Stockholm", "Göteborg", "Malmö", "Umeå", "Mariehamn"},
		},
	},
	"fi": {
		titles: []string{
			"Ihmiskaupan uhrien tunnistaminen {sektori}",
			"Työperäisen ihmiskaupan torjunta {sektori}",
			"Ihmiskauppa ja pakkotyö: viranomaisten yhteistyö",
			"Ihmiskaupan uhrien auttaminen {kaupunki}",
		},
		done: []string{
			"Poliisi ja työsuojeluviranomainen tekivät yhteisiä tarkastuksia {sektori}.",
			"Ihmiskaupan uhrien auttamisjärjestelmä tarjoaa majoitusta ja oikeudellista neuvontaa.",
			"Kunnan sosiaalityöntekijät koulutettiin tunnistamaan ihmiskauppa ja pakkotyö.",
			"Järjestöt ja viranomaiset perustivat yhteisen työryhmän {kaupunki}.",
			"Työnantajan toimintaa tutkittiin verottajan vihjeen perusteella.",
		},
		results: []string{
			"Vuonna {year} tunnistettiin {n} ihmiskaupan uhria.",
			"Työnantaja tuomittiin ihmiskaupasta ja kiskonnantapaisesta työsyrjinnästä.",
			"Uhrit luottavat viranomaisiin aiempaa enemmän.",
		},
		transfer: []string{
			"Malli sopii muihin Pohjoismaihin, jos viranomaiset voivat jakaa tietoa.",
			"Toiminta edellyttää koulutettua yhteyshenkilöä jokaisessa kunnassa.",
		},
		proposal: []string{
			"Pohjoismainen ihmiskaupan vastaisten koordinaattorien verkosto.",
			"Yhteiset pohjoismaiset indikaattorit työperäiselle ihmiskaupalle.",
		},
		comments:    []string{"Ryhmä keskusteli tulkkien roolista.", "Yhteystiedot saa raportoijalta."},
		keyMessages: []string{"Ihmiskaupan uhrien tunnistaminen alkaa koulutuksesta."},
		slots: map[string][]string{
			"sektori":  {"rakennusalalla", "siivousalalla", "maataloudessa", "ravintola-alalla", "marjanpoiminnassa"},
			"kaupunki": {"Helsingissä", "Tampereella", "Turussa", "Oulussa", "Maarianhaminassa"},
		},
	},
	"da": {
		titles: []string{
			"Fælles kontroller mod menneskehandel i {branche}",
			"Støtte til ofre for menneskehandel i {by}",
			"Opsøgende arbejde blandt kvinder i prostitution",
		},
		done: []string{
			"Politiet og Arbejdstilsynet gennemførte fælles kontroller hos arbejdsgiverne i {branche}.",
			"Center mod Menneskehandel tilbyder ofrene rådgivning og et sikkert opholdssted.",
			"Kommunen har uddannet {n} sagsbehandlere i at identificere ofre for menneskehandel.",
			"En tværfaglig gruppe i {by} mødes hver måned om konkrete sager.",
		},
		results: []string{
			"{n} mulige ofre for menneskehandel blev identificeret.",
			"Arbejdsgiveren blev dømt for menneskehandel.",
		},
		transfer: []string{
			"Metoden kan bruges i de andre nordiske lande, hvis myndighederne må dele oplysninger.",
		},
		proposal: []string{
			"Et nordisk netværk af nationale koordinatorer mod menneskehandel.",
		},
		comments:    []string{"Gruppen drøftede tolkenes rolle."},
		keyMessages: []string{"Samarbejde mellem myndigheder og organisationer beskytter ofrene."},
		slots: map[string][]string{
			"branche": {"byggebranchen", "rengøringsbranchen", "landbruget", "restaurationsbranchen"},
			"by":      {"København", "Aarhus", "Odense", "Tórshavn", "Nuuk"},
		},
	},
	"no": {
		titles: []string{
			"Felles kontroller mot menneskehandel i {bransje}",
			"Hjelp til ofre for menneskehandel i {by}",
			"Tverretatlig samarbeid mot arbeidsutnyttelse",
		},
		done: []string{
			"Politiet og Arbeidstilsynet gjennomførte felles kontroller hos arbeidsgiverne i {bransje}.",
			"Ofrene for menneskehandel får tilbud om trygt bosted gjennom et eget prosjekt.",
			"Kommunen har opprettet et tverretatlig team mot menneskehandel i {by}.",
			"Et senter mot arbeidslivskriminalitet samler politiet, skatteetaten og arbeidstilsynet.",
		},
		results: []string{
			"{n} mulige ofre for menneskehandel ble identifisert.",
			"Arbeidsgiveren ble dømt for menneskehandel.",
		},
		transfer: []string{
			"Modellen kan brukes i de andre nordiske landene dersom etatene får dele informasjon.",
		},
		proposal: []string{
			"Et nordisk nettverk av nasjonale koordinatorer mot menneskehandel.",
		},
		comments:    []string{"Gruppen diskuterte tolkenes rolle."},
		keyMessages: []string{"Samarbeid mellom etatene beskytter ofrene."},
		slots: map[string][]string{
			"bransje": {"byggebransjen", "renholdsbransjen", "landbruket", "restaurantbransjen"},
			"by":      {"Oslo", "Bergen", "Trondheim", "Tromsø"},
		},
	},
}
