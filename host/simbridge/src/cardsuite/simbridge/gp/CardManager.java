package cardsuite.simbridge.gp;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The Issuer Security Domain of one simulated card (GP Card Spec v2.3.1): selectable by AID A000000151000000 and
 * implicitly selected after power-up, it authenticates the host over SCP02 or SCP03 and then manages the card's
 * content and life cycle. It sits in front of the Java Card runtime: {@link #process} answers the APDUs meant for
 * the ISD and returns null for everything the selected applet should get.
 */
public final class CardManager {
    public static final byte[] ISD_AID = Bytes.fromHex("A000000151000000");

    /** Card life cycle (GP Card Spec §5.1.1, Table 11-6). */
    public static final int OP_READY = 0x01;
    public static final int INITIALIZED = 0x07;
    public static final int SECURED = 0x0F;
    public static final int CARD_LOCKED = 0x7F;
    public static final int TERMINATED = 0xFF;

    /** The instructions the ISD answers (GP Card Spec v2.3.1 §11, Amendment D for SCP03); others get 6D00. */
    static final int INS_SELECT = 0xA4;
    static final int INS_INITIALIZE_UPDATE = 0x50;
    static final int INS_EXTERNAL_AUTHENTICATE = 0x82;
    static final int INS_GET_DATA = 0xCA;
    static final int INS_GET_STATUS = 0xF2;
    static final int INS_INSTALL = 0xE6;
    static final int INS_LOAD = 0xE8;
    static final int INS_DELETE = 0xE4;
    static final int INS_SET_STATUS = 0xF0;
    static final int INS_PUT_KEY = 0xD8;
    static final int INS_STORE_DATA = 0xE2;
    /** SELECT P1: by DF name (ISO 7816-4 table 39). */
    private static final int SELECT_BY_NAME = 0x04;

    public static final int DEFAULT_AUTHENTICATION_LIMIT = 10;
    /** Response data is kept under 256 bytes, R-MAC included. */
    private static final int MAX_RESPONSE = 240;
    private static final int MAX_LOAD_FILE = 1 << 20;
    /**
     * ISD privileges: Security Domain, Card Lock, Card Terminate, Card Reset, CVM Management; Trusted Path ...
     * (§11.1.2). Card Reset passes to an application given it, and back when none has it.
     */
    private static final byte[] ISD_PRIVILEGES = Bytes.fromHex("9EFE80");

    /** What the card manager needs from the Java Card runtime underneath. */
    public interface Platform {
        /**
         * Creates an applet instance through the class's install(bArray, offset, length) and registers it.
         *
         * @throws IllegalArgumentException if the class is unusable or the AID taken
         * @throws IllegalStateException if install() throws or does not register
         */
        void createInstance(byte[] aid, String className, byte[] installBArray);

        void deleteInstance(byte[] aid);

        /** Deselects the applet the runtime has selected, if any (the ISD takes over). */
        void deselectApplet();

        /** The concrete javacard.framework.Applet classes of a Java package in the applet class path. */
        List<String> appletClassesIn(String javaPackage);

        /**
         * One persistent write of the card manager's own memory, counted with the applets' writes: false when the
         * power fails at it (an armed tear), and then the card manager must not complete the update.
         */
        boolean persistentWrite();

        /** Selects an applet at power-up, as the default-selected application: select() only. */
        boolean selectImplicitly(byte[] aid);

        /** Sends the runtime a SELECT of this applet by its full AID; the runtime's response. */
        byte[] selectApplet(byte[] aid);

        /** Runs a command in an applet without selecting it (STORE DATA of a personalisation); its response. */
        byte[] processUnselected(byte[] aid, byte[] command);
    }

    /** The secure channel of the selected security domain (the ISD's, or an SSD's from {@link #channels}). */
    private SecureChannel channel;
    private final SecureChannel isdChannel;
    private final KeyStore isdKeys;
    /** What an SSD is given at INSTALL: the card's initial key set (§7.2: an SSD's keys are then put with PUT KEY). */
    private final StaticKeys initialKeys;
    // the supplementary security domains' own key sets and channels, by AID (hex)
    private final java.util.Map<String, KeyStore> domainKeys = new java.util.HashMap<>();
    private final java.util.Map<String, SecureChannel> channels = new java.util.HashMap<>();
    /** The selected SSD, null while the ISD is selected. */
    private byte[] currentSd;
    private final Registry registry;
    private final Platform platform;
    private final Imports imports;
    private byte[] serial = SecureChannel.random(4);
    private IsdData isdData = IsdData.factory(serial);
    private int cardLifeCycle = OP_READY;
    private int failedAuthentications;
    private int authenticationLimit = DEFAULT_AUTHENTICATION_LIMIT;
    private boolean selected = true;

    // INSTALL [for load] and the LOAD blocks that follow (GP Card Spec §11.6.2.1)
    private byte[] loadingAid;
    private byte[] loadingDomain; // the SSD INSTALL [for load] named, null for the ISD
    private byte[] loadingHash; // the Load File Data Block Hash INSTALL [for load] gave, empty for none
    private int nextBlock;
    private ByteArrayOutputStream loadData;

    // INSTALL [for personalization] (§11.5.2.3.6): the application the session's STORE DATA commands go to
    private byte[] personalizing;
    // STORE DATA to the ISD: the block number the next command must have (§11.11.2.1, P2)
    private int nextStoreBlock;

    // GET STATUS paging: the entries not yet sent for the last P1 (§11.4.2.1, P2 b1 "next occurrence")
    private int statusP1 = -1;
    private List<byte[]> statusPending = new ArrayList<>();

    /**
     * @param protocol 2 (SCP02) or 3 (SCP03)
     * @param scpParameter the "i" parameter: SCP02 0x15 or 0x55; SCP03 0x00, 0x10, 0x30 or 0x70
     */
    public CardManager(int protocol, int scpParameter, StaticKeys keys, Registry registry, Platform platform) {
        this.registry = registry;
        this.platform = platform;
        this.imports = new Imports(registry);
        if (protocol == 2) {
            if (!Scp02Channel.fits(keys)) {
                throw new IllegalArgumentException("SCP02 keys are 16-byte 3DES keys");
            }
            isdChannel = new Scp02Channel(scpParameter, ISD_AID);
            this.isdKeys = new KeyStore(keys, KeyStore.TYPE_DES);
        } else if (protocol == 3) {
            if (!Scp03Channel.fits(keys)) {
                throw new IllegalArgumentException("SCP03 keys of one key set have one length");
            }
            isdChannel = new Scp03Channel(scpParameter, ISD_AID);
            this.isdKeys = new KeyStore(keys, KeyStore.TYPE_AES);
        } else {
            throw new IllegalArgumentException("secure channel protocol 2 or 3, got " + protocol);
        }
        channel = isdChannel;
        initialKeys = keys;
    }

    /** The key store of the selected security domain. */
    private KeyStore keys() {
        return currentSd == null ? isdKeys : domainKeys.get(Registry.key(currentSd));
    }

    /** Makes the ISD (null) or an SSD the selected security domain, any session closed. */
    private void selectDomain(byte[] sd) {
        channel.close();
        currentSd = sd == null ? null : sd.clone();
        channel = sd == null ? isdChannel : channels.get(Registry.key(sd));
        channel.close();
    }

    // ---------------------------------------------------------------- configuration and inspection

    public int protocol() {
        return channel.protocol();
    }

    public int scpParameter() {
        return channel.parameter;
    }

    /** The version of the default key set (the one INITIALIZE UPDATE P1 00 uses). */
    public int keyVersion() {
        return isdKeys.defaultVersion();
    }

    /** The key versions on the card, in the order the Key Information Template lists them. */
    public int[] keyVersions() {
        return isdKeys.snapshot().keySet().stream().mapToInt(Integer::intValue).toArray();
    }

    public Registry registry() {
        return registry;
    }

    /** INITIALIZE UPDATEs not (yet) followed by a successful EXTERNAL AUTHENTICATE, plus unknown key versions. */
    public int failedAuthentications() {
        return failedAuthentications;
    }

    public int authenticationLimit() {
        return authenticationLimit;
    }

    public void setAuthenticationLimit(int limit) {
        if (limit < 1) {
            throw new IllegalArgumentException("the limit is at least 1");
        }
        authenticationLimit = limit;
    }

    /** true once the limit is reached: INITIALIZE UPDATE answers 6983 for good, the card is CARD_LOCKED. */
    public boolean authenticationBlocked() {
        return failedAuthentications >= authenticationLimit;
    }

    public int cardLifeCycle() {
        return cardLifeCycle;
    }

    /** Puts the card in a life cycle state directly (a card as it leaves the factory or personalisation). */
    public void setCardLifeCycle(int state) {
        if (state != OP_READY && state != INITIALIZED && state != SECURED && state != CARD_LOCKED
                && state != TERMINATED) {
            throw new IllegalArgumentException(String.format("not a card life cycle state: %02X", state));
        }
        cardLifeCycle = state;
    }

    /** The IC serial number in the CPLC (4 bytes, random per card unless set). */
    public byte[] serial() {
        return serial.clone();
    }

    public void setSerial(byte[] serial) {
        if (serial == null || serial.length != 4) {
            throw new IllegalArgumentException("the IC serial number has 4 bytes");
        }
        isdData = isdData.withSerial(this.serial, serial);
        this.serial = serial.clone();
    }

    /** The CPLC data object as GET DATA 9F7F returns it (tag, length, 42 bytes). */
    public byte[] cplc() {
        return CardData.cplc(serial, isdData.prePerso, isdData.perso);
    }

    /**
     * Gives the card static keys diversified from an issuer master key with its key diversification data (as
     * issued cards hold them): the default key set is replaced, its version kept. Call after {@link #setSerial}.
     *
     * @param kdf "emv", "visa2" (SCP02, 3DES) or "kdf3" (SCP03, AES)
     */
    public void setDiversifiedKeys(String kdf, byte[] master) {
        StaticKeys derived = KeyDiversification.derive(kdf, master, isdData.kdd, isdKeys.defaultVersion());
        if (channel.protocol() == 2 ? !Scp02Channel.fits(derived) : !Scp03Channel.fits(derived)) {
            throw new IllegalArgumentException(kdf + " keys do not fit SCP0" + channel.protocol());
        }
        java.util.Map<Integer, java.util.Map<Integer, KeyStore.Key>> next = new java.util.LinkedHashMap<>();
        next.put(derived.version, KeyStore.keySet(derived, isdKeys.scpType()));
        isdKeys.publish(next);
    }

    /** An application's life cycle byte, or -1 when there is no such application. */
    public int applicationLifeCycle(byte[] aid) {
        Registry.Application app = registry.application(aid);
        return app == null ? -1 : app.lifeCycle;
    }

    public boolean isSelected() {
        return selected;
    }

    // ---------------------------------------------------------------- the card's side

    /**
     * Power-up: the default-selected application (Card Reset privilege, §6.6) is implicitly selected, else the ISD;
     * any session or load in progress is gone.
     */
    public void powerUp() {
        selected = true;
        selectDomain(null);
        abortLoad();
        statusPending = new ArrayList<>();
        Registry.Application defaultApp = selectableDefault();
        if (defaultApp != null && platform.selectImplicitly(defaultApp.aid)) {
            selected = false;
        }
    }

    /** The default-selected application when it may be selected now (SELECTABLE, the card not locked), else null. */
    private Registry.Application selectableDefault() {
        Registry.Application app = registry.defaultSelected();
        if (app == null || !app.selectable() || cardLifeCycle == CARD_LOCKED || cardLifeCycle == TERMINATED) {
            return null;
        }
        return app;
    }

    /** The ISD's privileges as GET STATUS shows them: without Card Reset while an application holds it. */
    private byte[] isdPrivileges() {
        byte[] privileges = ISD_PRIVILEGES.clone();
        if (registry.defaultSelected() != null) {
            privileges[0] &= ~Registry.CARD_RESET;
        }
        return privileges;
    }

    /**
     * One command APDU. Returns the response (data and status word) when the ISD handles it, null when it belongs
     * to the Java Card runtime (a SELECT of an applet, or any command while an applet is selected).
     */
    public byte[] process(byte[] raw) {
        if (isSelectByName(raw)) {
            return select(raw);
        }
        if (!selected) {
            return null;
        }
        CommandApdu command;
        try {
            command = CommandApdu.parse(raw);
        } catch (GpException e) {
            return sw(e.sw());
        }
        try {
            return dispatch(command);
        } catch (GpException e) {
            return respond(new byte[0], e.sw());
        }
    }

    private static boolean isSelectByName(byte[] raw) {
        return raw.length >= 4 && (raw[0] & 0xFC) == 0x00 && (raw[1] & 0xFF) == INS_SELECT && raw[2] == SELECT_BY_NAME;
    }

    /**
     * SELECT by DF name (GP Card Spec §11.9): empty data or (a prefix of) the ISD's AID selects the ISD; an
     * application must be SELECTABLE and not LOCKED, and the card neither CARD_LOCKED nor TERMINATED (§5.1.1.4),
     * or the answer is 6A82. Anything else goes to the runtime, which answers for its applets or forwards the
     * SELECT to the applet already selected.
     */
    private byte[] select(byte[] raw) {
        CommandApdu command;
        try {
            command = CommandApdu.parse(raw);
        } catch (GpException e) {
            return selected ? sw(e.sw()) : null;
        }
        byte[] aid = command.data;
        Registry.Application defaultApp = selectableDefault();
        if (aid.length == 0 && defaultApp != null) {
            return selectDefault(defaultApp);
        }
        if (aid.length == 0 || (aid.length >= 5 && Registry.startsWith(ISD_AID, aid))) {
            platform.deselectApplet();
            selected = true;
            selectDomain(null);
            abortLoad();
            byte[] fci = CardData.fci(ISD_AID, channel.protocol(), channel.parameter);
            return respond(fci, cardLifeCycle == CARD_LOCKED ? Sw.CARD_LOCKED_WARNING : Sw.OK);
        }
        Registry.Application app = registry.applicationForSelect(aid);
        if (app != null && app.securityDomain() && app.selectable() && cardLifeCycle != CARD_LOCKED
                && cardLifeCycle != TERMINATED) {
            // an SSD is the card manager's, not an applet: it answers with its FCI and its own keys (§7.2)
            platform.deselectApplet();
            selected = true;
            selectDomain(app.aid);
            abortLoad();
            return respond(CardData.fci(app.aid, channel.protocol(), channel.parameter), Sw.OK);
        }
        if (app != null && (!app.selectable() || cardLifeCycle == CARD_LOCKED || cardLifeCycle == TERMINATED)) {
            return sw(Sw.NOT_FOUND);
        }
        if (app == null && selected) {
            return sw(Sw.NOT_FOUND); // the ISD stays selected, as a Java Card forwards a failed SELECT
        }
        if (app != null) {
            selected = false;
            selectDomain(null);
            abortLoad();
        }
        return null;
    }

    /** SELECT without an AID while an application holds Card Reset: that application, as after power-up. */
    private byte[] selectDefault(Registry.Application app) {
        selected = false;
        selectDomain(null);
        abortLoad();
        return platform.selectApplet(app.aid);
    }

    private byte[] dispatch(CommandApdu command) {
        if ((command.cla & 0x03) != 0 || (command.cla & 0x70) != 0) {
            throw new GpException(Sw.CLA_NOT_SUPPORTED, "basic channel, classes 00/80/84 only");
        }
        if (cardLifeCycle == TERMINATED && command.ins != INS_GET_DATA) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the card is TERMINATED: GET DATA only (§5.1.1.5)");
        }
        if (currentSd != null && command.ins != INS_INITIALIZE_UPDATE && command.ins != INS_EXTERNAL_AUTHENTICATE
                && command.ins != INS_GET_DATA && command.ins != INS_GET_STATUS && command.ins != INS_PUT_KEY) {
            // no Authorized/Delegated Management privilege here: content goes through the ISD (§9.1)
            authenticated(command);
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "the SSD has no card content management");
        }
        switch (command.ins) {
            case INS_INITIALIZE_UPDATE: return initializeUpdate(command);
            case INS_EXTERNAL_AUTHENTICATE: return externalAuthenticate(command);
            case INS_GET_DATA: return getData(command);
            case INS_GET_STATUS: return getStatus(authenticated(command));
            case INS_INSTALL: return install(authenticated(command));
            case INS_LOAD: return load(authenticated(command));
            case INS_DELETE: return delete(authenticated(command));
            case INS_SET_STATUS: return setStatus(authenticated(command));
            case INS_PUT_KEY: return putKey(authenticated(command));
            case INS_STORE_DATA: return storeData(authenticated(command));
            default: throw new GpException(Sw.INS_NOT_SUPPORTED, "not a card manager command");
        }
    }

    /** Card content management needs an authenticated session (§10.2): the command unwrapped, or 6982. */
    private CommandApdu authenticated(CommandApdu command) {
        if (!channel.isAuthenticated()) {
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "no secure channel");
        }
        if ((command.cla & 0x80) == 0) {
            throw new GpException(Sw.CLA_NOT_SUPPORTED, "GP commands are class 80/84");
        }
        return channel.unwrap(command);
    }

    // ---------------------------------------------------------------- secure channel

    /**
     * §11.11 / Amendment D §7.1: P1 is the key version (00 = the one key set). Every INITIALIZE UPDATE counts as a
     * failed authentication until EXTERNAL AUTHENTICATE succeeds, as cards count it, so that a host which gives
     * up on a wrong card cryptogram (wrong keys) moves the counter too.
     */
    private byte[] initializeUpdate(CommandApdu command) {
        if (command.cla != 0x80) {
            throw new GpException(Sw.CLA_NOT_SUPPORTED, "INITIALIZE UPDATE is class 80");
        }
        channel.close();
        if (authenticationBlocked()) {
            cardLifeCycle = cardLifeCycle == TERMINATED ? TERMINATED : CARD_LOCKED;
            throw new GpException(Sw.AUTH_BLOCKED, "too many failed authentications");
        }
        if (command.data.length != channel.challengeLength()) {
            throw new GpException(Sw.WRONG_LENGTH, "the host challenge has " + channel.challengeLength() + " bytes");
        }
        failedAuthentications++;
        StaticKeys sessionKeys = keys().scpKeys(command.p1);
        if (sessionKeys == null) {
            lockIfBlocked();
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no key set with version " + command.p1);
        }
        return respond(Bytes.concat(isdData.kdd,
                channel.initializeUpdate(command.data, sessionKeys)), Sw.OK);
    }

    /** §11.8 / Amendment D §7.2: 6300 wrong host cryptogram, 6982 wrong C-MAC; the session is then closed. */
    private byte[] externalAuthenticate(CommandApdu command) {
        try {
            channel.externalAuthenticate(command);
        } catch (GpException e) {
            lockIfBlocked();
            throw e;
        }
        failedAuthentications = 0;
        return sw(Sw.OK); // no R-MAC: it covers the responses after EXTERNAL AUTHENTICATE (Amendment D §6.2.5)
    }

    private void lockIfBlocked() {
        if (authenticationBlocked() && cardLifeCycle != TERMINATED) {
            cardLifeCycle = CARD_LOCKED;
        }
    }

    // ---------------------------------------------------------------- GET DATA, GET STATUS

    /**
     * §11.3: CPLC 9F7F, Card Data 66, Key Information Template E0, IIN 42 (once stored), CIN 45, key diversification
     * data CF, Card Capability Information 67, sequence counter C1 (SCP02; SCP03 with the pseudo-random challenge).
     */
    private byte[] getData(CommandApdu command) {
        if (command.secureMessaging()) {
            command = authenticated(command);
        }
        int tag = command.p1 << 8 | command.p2;
        switch (tag) {
            case 0x9F7F: return respond(cplc(), Sw.OK);
            case 0x0066: return respond(Tlv.encode(0x66, CardData.recognitionData(channel.protocol(),
                    channel.parameter)), Sw.OK);
            case 0x00E0: return respond(CardData.keyInformation(keys().information()), Sw.OK);
            case 0x0045: return respond(Tlv.encode(0x45, isdData.cin), Sw.OK);
            case 0x0042:
                if (isdData.iin == null) {
                    throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no IIN stored yet");
                }
                return respond(Tlv.encode(0x42, isdData.iin), Sw.OK);
            case 0x00CF: return respond(Tlv.encode(0xCF, isdData.kdd), Sw.OK);
            case 0x0067: return respond(CardData.capabilities(channel.protocol(), channel.parameter, ISD_PRIVILEGES),
                    Sw.OK);
            case 0x00C1:
                if (channel instanceof Scp02Channel) {
                    return respond(Tlv.encode(0xC1, ((Scp02Channel) channel).sequenceCounter()), Sw.OK);
                }
                if (channel instanceof Scp03Channel && (channel.parameter & 0x10) != 0) {
                    return respond(Tlv.encode(0xC1, ((Scp03Channel) channel).sequenceCounter()), Sw.OK);
                }
                // fall through: SCP03 cards keep no such counter unless i b5 is set
            default: throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, String.format("no data object %04X", tag));
        }
    }

    /**
     * §11.4: P1 80 the ISD, 40 applications, 20 load files, 10 load files and their modules; P2 b2 the TLV format
     * (E3 entries), otherwise the GP 2.1.1 format; P2 b1 the next occurrence after a 6310. Data: 4F with an AID
     * (prefix) to match, 4F 00 for all.
     */
    private byte[] getStatus(CommandApdu command) {
        int p1 = command.p1;
        if (p1 != 0x80 && p1 != 0x40 && p1 != 0x20 && p1 != 0x10) {
            throw new GpException(Sw.WRONG_P1P2, "GET STATUS P1 is 80, 40, 20 or 10");
        }
        if ((command.p2 & ~0x03) != 0) {
            throw new GpException(Sw.WRONG_P1P2, "GET STATUS P2 is 00..03");
        }
        boolean tlv = (command.p2 & 0x02) != 0;
        if ((command.p2 & 0x01) == 0 || statusP1 != p1) {
            byte[] filter = Tlv.find(Tlv.parse(command.data), 0x4F);
            if (filter == null) {
                throw new GpException(Sw.WRONG_DATA, "GET STATUS needs a search criterion 4F");
            }
            statusP1 = p1;
            statusPending = Status.entries(p1, filter, tlv, registry, cardLifeCycle, isdPrivileges());
            if (statusPending.isEmpty()) {
                throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "nothing matches");
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (!statusPending.isEmpty() && (out.size() == 0
                || out.size() + statusPending.get(0).length <= MAX_RESPONSE)) {
            byte[] entry = statusPending.remove(0);
            out.write(entry, 0, entry.length);
        }
        return respond(out.toByteArray(), statusPending.isEmpty() ? Sw.OK : Sw.MORE_DATA);
    }

    // ---------------------------------------------------------------- INSTALL, LOAD

    /** §11.5: P1 02 [for load]; 04, 08 or 0C [for install] / [for make selectable]. */
    private byte[] install(CommandApdu command) {
        requireContentManagement();
        Fields fields = new Fields(command.data);
        switch (command.p1) {
            case 0x02: return installForLoad(fields);
            case 0x04: case 0x0C: return installForInstall(fields, command.p1 == 0x0C);
            case 0x08: return makeSelectable(fields);
            case 0x10: return installForExtradition(fields);
            case 0x20: return installForPersonalization(fields);
            case 0x40: return installForRegistryUpdate(fields);
            default: throw new GpException(Sw.WRONG_P1P2, String.format("INSTALL P1 %02X not supported", command.p1));
        }
    }

    /**
     * §11.5.2.3.1: load file AID, SD AID, the Load File Data Block Hash, load parameters, token. The hash (SHA-1 or
     * SHA-2, told by its length; 6A80 otherwise) is checked at the last LOAD; a load that DAP verification applies to
     * must carry one (6A80 without).
     */
    private byte[] installForLoad(Fields fields) {
        byte[] aid = fields.next();
        byte[] sd = fields.next();
        byte[] hash = fields.next();
        fields.optional(); // load parameters
        fields.optional(); // token
        fields.end();
        if (aid.length < 5 || aid.length > 16) {
            throw new GpException(Sw.WRONG_DATA, "bad load file AID");
        }
        byte[] domain = associatedDomain(sd);
        if (registry.loadFile(aid) != null || registry.application(aid) != null || Arrays.equals(aid, ISD_AID)) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the AID is already on the card");
        }
        if (hash.length > 0) {
            Dap.hashAlgorithm(hash.length);
        } else if (!Dap.verifiers(registry, domain).isEmpty()) {
            throw new GpException(Sw.WRONG_DATA, "DAP verification needs the Load File Data Block Hash");
        }
        loadingAid = aid;
        loadingDomain = domain;
        loadingHash = hash;
        nextBlock = 0;
        loadData = new ByteArrayOutputStream();
        return respond(new byte[] {0}, Sw.OK);
    }

    /**
     * §11.6: blocks numbered from 00, P1 80 on the last. At the last block the card reads the CAP components and
     * refuses, like a card that cannot link it: 6438 when an imported package (or its version) is not on the card;
     * 6A80 when the data is not a CAP, its package AID differs from INSTALL [for load], or the simulator's build
     * has no classes for it (the package was not registered as loadable, or an applet has no class).
     */
    private byte[] load(CommandApdu command) {
        requireContentManagement();
        if (loadingAid == null) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "LOAD without INSTALL [for load]");
        }
        if ((command.p1 & 0x7F) != 0 || command.p2 != nextBlock) {
            abortLoad();
            throw new GpException(Sw.WRONG_P1P2, "LOAD block out of sequence");
        }
        loadData.write(command.data, 0, command.data.length);
        nextBlock++;
        if (loadData.size() > MAX_LOAD_FILE) {
            abortLoad();
            throw new GpException(Sw.NOT_ENOUGH_MEMORY, "load file too large");
        }
        if ((command.p1 & 0x80) == 0) {
            return respond(new byte[] {0}, Sw.OK);
        }
        byte[] aid = loadingAid;
        byte[] domain = loadingDomain;
        byte[] hash = loadingHash;
        byte[] data = loadData.toByteArray();
        abortLoad();
        Dap.LoadFileData loadFile = Dap.parse(data);
        verifyLoadFile(loadFile, hash, domain);
        CapFile cap = CapFile.parseComponents(loadFile.dataBlock);
        if (!Arrays.equals(cap.pkg.aid, aid)) {
            throw new GpException(Sw.WRONG_DATA, "the CAP's package AID is not the one INSTALL [for load] named");
        }
        imports.check(cap);
        String javaPackage = registry.javaPackageOf(aid);
        if (javaPackage == null) {
            throw new GpException(Sw.WRONG_DATA, "the simulator has no classes for package " + Bytes.hex(aid));
        }
        for (byte[] applet : cap.appletAids) {
            appletClass(applet, javaPackage);
        }
        Registry.LoadFile loaded = new Registry.LoadFile(aid, cap.pkg.major, cap.pkg.minor, javaPackage,
                cap.appletAids, cap.imports, false);
        loaded.domain = domain;
        registry.addLoadFile(loaded);
        return respond(new byte[] {0}, Sw.OK);
    }

    /**
     * Before anything of a load file is kept (§9.3.5, load completion): the Load File Data Block against INSTALL [for
     * load]'s hash (6A80 when it differs, or when DAP blocks come without one), then each security domain that
     * verifies DAPs for this load (its own with DAP Verification, a PERSONALIZED one with Mandated DAP Verification)
     * against its DAP block: 6982 when the block is missing, the signature wrong, or the domain has no DAP key
     * (security status not satisfied, Table 11-10; C.1.2: verification fails without the key). DAP blocks of other
     * domains are not looked at.
     */
    private void verifyLoadFile(Dap.LoadFileData loadFile, byte[] hash, byte[] domain) {
        if (hash.length == 0 && !loadFile.signatures.isEmpty()) {
            throw new GpException(Sw.WRONG_DATA, "DAP blocks need the Load File Data Block Hash (C.2)");
        }
        if (hash.length > 0 && !Bytes.same(hash, Dap.hash(Dap.hashAlgorithm(hash.length), loadFile.dataBlock))) {
            throw new GpException(Sw.WRONG_DATA, "the Load File Data Block Hash does not match the data");
        }
        for (Registry.Application sd : Dap.verifiers(registry, domain)) {
            byte[] signature = loadFile.signatures.get(Registry.key(sd.aid));
            KeyStore.Key key = Dap.key(domainKeys.get(Registry.key(sd.aid)));
            if (signature == null || key == null || !Dap.verify(key, hash, signature)) {
                throw new GpException(Sw.SECURITY_NOT_SATISFIED, "DAP verification by " + Bytes.hex(sd.aid)
                        + (signature == null ? ": no DAP block" : key == null ? ": no DAP key" : " failed"));
            }
        }
    }

    /**
     * §11.5.2.3.2: load file AID, module AID, instance AID, privileges, install parameters (C9 the applet's own),
     * token. The applet's install() gets Li AID | Lc privileges | La C9 contents (§11.5.2.3.7 / JC RE §11.1).
     * 6A88 unknown load file or module; 6985 instance AID in use; 6A80 when the applet's install() fails.
     */
    private byte[] installForInstall(Fields fields, boolean makeSelectable) {
        byte[] loadFileAid = fields.next();
        byte[] moduleAid = fields.next();
        byte[] instanceAid = fields.next();
        byte[] privileges = fields.next();
        byte[] parameters = fields.optional();
        fields.optional(); // token
        fields.end();
        Registry.LoadFile file = registry.loadFile(loadFileAid);
        if (file == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such load file");
        }
        if (!Registry.containsAid(file.modules, moduleAid)) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such module in the load file");
        }
        if (instanceAid.length == 0) {
            instanceAid = moduleAid;
        }
        if (instanceAid.length < 5 || instanceAid.length > 16) {
            throw new GpException(Sw.WRONG_DATA, "bad instance AID");
        }
        if (registry.application(instanceAid) != null || registry.loadFile(instanceAid) != null
                || Arrays.equals(instanceAid, ISD_AID)) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the instance AID is already on the card");
        }
        if (privileges.length != 1 && privileges.length != 3) {
            throw new GpException(Sw.WRONG_DATA, "privileges have 1 or 3 bytes");
        }
        if (Arrays.equals(loadFileAid, Registry.SD_PACKAGE)) {
            checkPrivileges(privileges);
            Tlv.parse(parameters); // an SSD's parameters (81 its SCP, 82/87 extradition rules) are TLVs (6A80)
            return installDomain(instanceAid, moduleAid, privileges, makeSelectable);
        }
        byte[] appletParameters = new byte[0];
        if (parameters.length > 0) {
            byte[] c9 = Tlv.find(Tlv.parse(parameters), 0xC9);
            if (c9 == null) {
                throw new GpException(Sw.WRONG_DATA, "install parameters without C9");
            }
            appletParameters = c9;
        }
        checkPrivileges(privileges);
        String className = appletClass(moduleAid, file.javaPackage);
        byte[] bArray = Bytes.concat(new byte[] {(byte) instanceAid.length}, instanceAid,
                new byte[] {(byte) privileges.length}, privileges, new byte[] {(byte) appletParameters.length},
                appletParameters);
        if (bArray.length > 127) {
            throw new GpException(Sw.WRONG_DATA, "install parameters too long");
        }
        try {
            platform.createInstance(instanceAid, className, bArray);
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new GpException(Sw.WRONG_DATA, "install() of " + className + " failed: " + e.getMessage());
        }
        Registry.Application app = new Registry.Application(instanceAid, loadFileAid, moduleAid, className,
                makeSelectable ? Registry.SELECTABLE : Registry.INSTALLED, new byte[3]);
        app.domain = file.domain; // an application goes with its load file's security domain (§6.3.1)
        registry.addApplication(app);
        grant(app, privileges);
        return respond(new byte[] {0}, Sw.OK);
    }

    /**
     * The security domain a load file or application is to be associated with: empty or the ISD (null), or an SSD
     * on the card that is SELECTABLE (6A88 otherwise: no such security domain).
     */
    private byte[] associatedDomain(byte[] sd) {
        if (sd.length == 0 || Arrays.equals(sd, ISD_AID)) {
            return null;
        }
        Registry.Application domain = registry.securityDomain(sd);
        if (domain == null || !domain.selectable()) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such security domain");
        }
        return domain.aid.clone();
    }

    /**
     * INSTALL [for install] from the card's Security Domain package (§7.2, what gp --domain sends): a
     * supplementary security domain, which needs the Security Domain privilege, with its own key set (the card's
     * initial keys, to be replaced by PUT KEY through its own secure channel). The registry entry and the key set
     * are staged and committed in one write, so a tear leaves no half-made domain.
     */
    private byte[] installDomain(byte[] aid, byte[] module, byte[] privileges, boolean makeSelectable) {
        if (!Arrays.equals(module, Registry.SD_MODULE)) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such module in the load file");
        }
        if ((privileges[0] & Registry.SECURITY_DOMAIN) == 0) {
            throw new GpException(Sw.WRONG_DATA, "a security domain needs the Security Domain privilege");
        }
        if ((privileges[0] & Registry.CARD_RESET) != 0) {
            throw new GpException(Sw.WRONG_DATA, "a supplementary security domain is not default selected");
        }
        KeyStore store = new KeyStore(initialKeys, isdKeys.scpType());
        SecureChannel sdChannel = channel.protocol() == 2 ? new Scp02Channel(channel.parameter, aid)
                : new Scp03Channel(channel.parameter, aid);
        Registry.Application app = new Registry.Application(aid, Registry.SD_PACKAGE, module, null,
                makeSelectable ? Registry.SELECTABLE : Registry.INSTALLED, new byte[3]);
        app.privileges = Arrays.copyOf(privileges, 3);
        persist(1); // the entry with its keys, then the commit
        domainKeys.put(Registry.key(aid), store);
        channels.put(Registry.key(aid), sdChannel);
        registry.addApplication(app);
        return respond(new byte[] {0}, Sw.OK);
    }

    /**
     * §11.5.2.3.5 (Table 11-47): the security domain to move to, an empty field, the AID of an application or a
     * load file, empty privileges and parameters, token. The target is the ISD or a SELECTABLE SSD (6A88 otherwise);
     * a security domain is not moved (6985: this card has no SSD hierarchy), nor a load file to a domain with DAP
     * Verification (6985, §9.4.1). One write.
     */
    private byte[] installForExtradition(Fields fields) {
        byte[] target = fields.next();
        fields.next();
        byte[] aid = fields.next();
        fields.optional();
        fields.optional();
        fields.optional();
        fields.end();
        if (target.length == 0) {
            throw new GpException(Sw.WRONG_DATA, "INSTALL [for extradition] names the security domain");
        }
        byte[] domain = associatedDomain(target);
        Registry.Application app = registry.application(aid);
        Registry.LoadFile file = app == null ? registry.loadFile(aid) : null;
        if (app == null && file == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such application or load file");
        }
        if (app != null && app.securityDomain() || file != null && file.preloaded) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "security domains and pre-loaded files stay");
        }
        Registry.Application receiver = domain == null ? null : registry.securityDomain(domain);
        if (file != null && receiver != null && receiver.verifiesDap()) {
            // §9.4.1: no load file is extradited to a domain with DAP Verification (it verified none of it)
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "no load file goes to a DAP Verification domain");
        }
        persist(0);
        if (app != null) {
            app.domain = domain;
        } else {
            file.domain = domain;
        }
        return respond(new byte[] {0}, Sw.OK);
    }

    /**
     * §11.5.2.3.4 (Table 11-46): the security domain (empty: no extradition), an empty field, the application's AID,
     * its new privileges (empty: unchanged), parameters, token. 6A88 for an unknown application or another security
     * domain (this card has none), 6A80 for malformed privileges. Giving Card Reset takes it from the application
     * (or the ISD) that had it.
     */
    private byte[] installForRegistryUpdate(Fields fields) {
        byte[] domain = fields.next();
        fields.next();
        byte[] aid = fields.next();
        byte[] privileges = fields.optional();
        fields.optional();
        fields.optional();
        fields.end();
        if (domain.length != 0 && !Arrays.equals(domain, ISD_AID)) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such security domain");
        }
        Registry.Application app = registry.application(aid);
        if (app == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such application");
        }
        if (privileges.length > 0 && app.securityDomain() && (privileges[0] & Registry.SECURITY_DOMAIN) == 0) {
            throw new GpException(Sw.WRONG_DATA, "a security domain keeps the Security Domain privilege");
        }
        if (privileges.length > 0) {
            checkPrivileges(privileges);
            persist(0);
            grant(app, privileges);
        }
        return respond(new byte[] {0}, Sw.OK);
    }

    private static void checkPrivileges(byte[] privileges) {
        if (privileges.length != 1 && privileges.length != 3) {
            throw new GpException(Sw.WRONG_DATA, "privileges have 1 or 3 bytes");
        }
    }

    /** Sets an application's privileges (1 or 3 bytes, kept as 3); Card Reset is only ever one application's. */
    private void grant(Registry.Application app, byte[] privileges) {
        byte[] full = Arrays.copyOf(privileges, 3);
        if ((full[0] & Registry.CARD_RESET) != 0) {
            Registry.Application previous = registry.defaultSelected();
            if (previous != null && previous != app) {
                previous.privileges = previous.privileges.clone();
                previous.privileges[0] &= ~Registry.CARD_RESET;
            }
        }
        app.privileges = full;
    }

    /** §11.5.2.3.3: INSTALL [for make selectable]: empty load file and module, the instance AID, privileges. */
    private byte[] makeSelectable(Fields fields) {
        fields.next();
        fields.next();
        byte[] instanceAid = fields.next();
        byte[] privileges = fields.optional();
        fields.optional(); // token
        Registry.Application app = registry.application(instanceAid);
        if (app == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such application");
        }
        if (privileges.length > 0) {
            checkPrivileges(privileges);
        }
        boolean installed = app.lifeCycle == Registry.INSTALLED;
        // gp --make-default sends this for an application already SELECTABLE with Card Reset: cards take it as
        // a change of privileges, which GP 2.2 and later give INSTALL [for registry update]
        if (!installed && (privileges.length == 0 || !app.selectable())) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the application is not INSTALLED");
        }
        persist(0);
        if (installed) {
            app.lifeCycle = Registry.SELECTABLE;
        }
        if (privileges.length > 0) {
            grant(app, privileges);
        }
        return respond(new byte[] {0}, Sw.OK);
    }

    /** The applet class for an applet AID: registered, or else the one Applet subclass in the Java package. */
    private String appletClass(byte[] appletAid, String javaPackage) {
        String registered = registry.registeredAppletClass(appletAid);
        if (registered != null) {
            return registered;
        }
        List<String> found = platform.appletClassesIn(javaPackage);
        if (found.size() == 1) {
            return found.get(0);
        }
        throw new GpException(Sw.WRONG_DATA, "no class registered for applet " + Bytes.hex(appletAid) + " and "
                + found.size() + " Applet classes in " + javaPackage);
    }

    private void abortLoad() {
        loadingAid = null;
        loadingHash = null;
        loadData = null;
        nextBlock = 0;
        personalizing = null; // a personalisation belongs to the session too
        nextStoreBlock = 0;
    }

    private void requireContentManagement() {
        if (cardLifeCycle == CARD_LOCKED || cardLifeCycle == TERMINATED) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "no card content management while CARD_LOCKED");
        }
    }

    // ---------------------------------------------------------------- PUT KEY

    /**
     * §11.8: adds a key version (P1 00) or replaces the keys of the version P1 names, the key values encrypted
     * under the session's DEK. Answers the new version and the keys' check values. The new keys are staged and
     * then made the card's keys in one step, so a tear anywhere leaves the old key set in force; the session goes
     * on with the keys it was opened with.
     */
    private byte[] putKey(CommandApdu command) {
        PutKey put = PutKey.parse(command, channel);
        KeyStore target = keys();
        java.util.Map<Integer, java.util.Map<Integer, KeyStore.Key>> next = put.apply(target);
        persist(put.stagedWrites());
        target.publish(next);
        return respond(put.response(), Sw.OK);
    }

    /**
     * The persistent writes of an update of the card manager's memory: {@code staged} writes of the new content
     * beside the old, then the commit (one write that switches to it). A tear at any of them leaves the old
     * content; the caller makes the change only after this returns.
     */
    private void persist(int staged) {
        for (int i = 0; i <= staged; i++) {
            if (!platform.persistentWrite()) {
                throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "power lost"); // the host sees no answer
            }
        }
    }

    // ---------------------------------------------------------------- STORE DATA

    /**
     * §11.5.2.3.6: empty load file and module fields, the application's AID, then empty privileges, parameters and
     * token. The application must be on the card and not LOCKED (6A88 otherwise); the session's STORE DATA commands
     * go to it from now on.
     */
    private byte[] installForPersonalization(Fields fields) {
        fields.next();
        fields.next();
        byte[] aid = fields.next();
        fields.optional();
        fields.optional();
        fields.optional();
        fields.end();
        Registry.Application app = registry.application(aid);
        if (app == null || (app.lifeCycle & Registry.LOCKED) != 0) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such application to personalise");
        }
        abortLoad();
        personalizing = app.aid.clone();
        return respond(new byte[] {0}, Sw.OK);
    }

    /**
     * §11.11: after INSTALL [for personalization] the command (its secure messaging removed) goes to the
     * application's process() as it is, and its answer back to the host. Otherwise the ISD stores its own data
     * objects: P1 b8 the last block, b7-b6 encryption (11: under the DEK; the ISD's objects are not secret and are
     * taken in clear only), b5-b4 the structure (01 DGIs: 2-byte tag, length 1 or FF + 2 bytes; 10 BER-TLV; 00 either),
     * P2 the block number from 00. Each block is checked whole before anything is stored (6A88 an object the ISD
     * does not keep, 6A80 a malformed block or value), then stored in one step.
     */
    private byte[] storeData(CommandApdu command) {
        if (personalizing != null) {
            byte[] forwarded = command.data.length == 0
                    ? new byte[] {(byte) command.cla, (byte) command.ins, (byte) command.p1, (byte) command.p2, 0}
                    : Bytes.concat(command.headerAndData(command.data.length, command.data), new byte[] {0});
            byte[] response = platform.processUnselected(personalizing, forwarded);
            int sw = (response[response.length - 2] & 0xFF) << 8 | response[response.length - 1] & 0xFF;
            return respond(Arrays.copyOf(response, response.length - 2), sw);
        }
        if (command.p2 != nextStoreBlock) {
            int expected = nextStoreBlock;
            nextStoreBlock = 0;
            throw new GpException(Sw.WRONG_P1P2, "STORE DATA block " + command.p2 + ", " + expected + " expected");
        }
        if ((command.p1 & 0x60) != 0) {
            throw new GpException(Sw.WRONG_DATA, "the ISD takes its data objects in clear");
        }
        int structure = command.p1 & 0x18;
        if (structure == 0x18) {
            throw new GpException(Sw.WRONG_P1P2, "STORE DATA structure 11 is reserved");
        }
        // without structure information (00, what gp --store-data and --store-dgi-file send) DGIs are told from
        // BER-TLV by their first byte: no BER tag is 00 (ISO/IEC 8825-1 8.1.2), a DGI 00xx starts so; for the
        // ISD's other objects (9F66 ..) the two codings are the same bytes
        boolean dgis = structure == 0x08 || structure == 0 && command.data.length > 0 && command.data[0] == 0;
        List<Tlv> objects = dgis ? Tlv.parseDgis(command.data) : Tlv.parse(command.data);
        IsdData next = isdData;
        for (Tlv object : objects) {
            next = next.with(object.tag, object.value);
        }
        persist(objects.size());
        isdData = next;
        nextStoreBlock = (command.p1 & 0x80) != 0 ? 0 : (command.p2 + 1) & 0xFF;
        return respond(new byte[0], Sw.OK);
    }

    // ---------------------------------------------------------------- DELETE, SET STATUS

    /**
     * §11.2: 4F AID of an application or a load file; P2 80 also deletes a load file's applications. 6A88 not
     * found; 6985 the ISD, a load file with applications (P2 00) or one that other load files import.
     */
    private byte[] delete(CommandApdu command) {
        requireContentManagement();
        if (command.p2 != 0x00 && command.p2 != 0x80) {
            throw new GpException(Sw.WRONG_P1P2, "DELETE P2 is 00 or 80");
        }
        byte[] aid = Tlv.find(Tlv.parse(command.data), 0x4F);
        if (aid == null) {
            throw new GpException(Sw.WRONG_DATA, "DELETE needs 4F");
        }
        if (Arrays.equals(aid, ISD_AID)) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the ISD cannot be deleted");
        }
        Registry.Application app = registry.application(aid);
        if (app != null) {
            deleteApplication(app);
            return respond(new byte[] {0}, Sw.OK);
        }
        Registry.LoadFile file = registry.loadFile(aid);
        if (file == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such application or load file");
        }
        if (Arrays.equals(aid, Registry.SD_PACKAGE)) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the card's Security Domain package stays");
        }
        List<Registry.Application> apps = registry.applicationsOf(aid);
        if (!apps.isEmpty() && command.p2 != 0x80) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the load file has applications");
        }
        if (!registry.dependentsOf(aid).isEmpty()) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "other load files import it");
        }
        for (Registry.Application related : apps) {
            deleteApplication(related);
        }
        registry.removeLoadFile(aid);
        return respond(new byte[] {0}, Sw.OK);
    }

    private void deleteApplication(Registry.Application app) {
        if (app.securityDomain()) {
            // §11.2.2.1: a security domain with applications or load files associated is not deleted
            if (registry.associatedWith(app.aid) > 0) {
                throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "the security domain has content");
            }
            persist(0);
            domainKeys.remove(Registry.key(app.aid));
            channels.remove(Registry.key(app.aid));
            registry.removeApplication(app.aid);
            return;
        }
        platform.deleteInstance(app.aid);
        registry.removeApplication(app.aid);
    }

    /**
     * §11.10: P1 80 the card (ISD) life cycle, P2 the new state: OP_READY → INITIALIZED → SECURED (forward only),
     * SECURED ↔ CARD_LOCKED, anything → TERMINATED. P1 40 an application: P2 80 LOCKED (the previous state kept in
     * b1-b7), 00 back from LOCKED, 07..7F an application specific state from SELECTABLE. 6985 for a transition
     * the life cycle does not allow, 6A88 for an unknown AID.
     */
    private byte[] setStatus(CommandApdu command) {
        if (command.p1 == 0x80) {
            if (command.data.length > 0 && !Arrays.equals(command.data, ISD_AID)) {
                throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "not the ISD's AID");
            }
            cardLifeCycle = cardTransition(cardLifeCycle, command.p2);
            return respond(new byte[0], Sw.OK);
        }
        if (command.p1 != 0x40) {
            throw new GpException(Sw.WRONG_P1P2, "SET STATUS P1 is 80 or 40");
        }
        requireContentManagement();
        Registry.Application app = registry.application(command.data);
        if (app == null) {
            throw new GpException(Sw.REFERENCED_DATA_NOT_FOUND, "no such application");
        }
        int state = app.lifeCycle;
        int target = command.p2;
        if (target == 0x80) {
            if ((state & Registry.LOCKED) != 0) {
                throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "already LOCKED");
            }
            app.lifeCycle = state | Registry.LOCKED;
        } else if (target == 0x00) {
            if ((state & Registry.LOCKED) == 0) {
                throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "not LOCKED");
            }
            app.lifeCycle = state & ~Registry.LOCKED;
        } else if ((target & 0x87) == Registry.SELECTABLE && (state & 0x87) == Registry.SELECTABLE) {
            app.lifeCycle = target; // application specific states keep b1-b3 set
        } else {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, String.format("no transition %02X → %02X", state,
                    target));
        }
        return respond(new byte[0], Sw.OK);
    }

    private static int cardTransition(int from, int to) {
        boolean allowed;
        switch (to) {
            case INITIALIZED: allowed = from == OP_READY; break;
            case SECURED: allowed = from == OP_READY || from == INITIALIZED || from == CARD_LOCKED; break;
            case CARD_LOCKED: allowed = from == SECURED; break;
            case TERMINATED: allowed = true; break;
            default: allowed = false;
        }
        if (!allowed) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, String.format("no card transition %02X → %02X",
                    from, to));
        }
        return to;
    }

    // ---------------------------------------------------------------- responses

    private byte[] respond(byte[] data, int sw) {
        byte[] body = channel.isAuthenticated() ? channel.wrapResponse(data, sw) : data;
        return Bytes.concat(body, new byte[] {(byte) (sw >> 8), (byte) sw});
    }

    private static byte[] sw(int sw) {
        return new byte[] {(byte) (sw >> 8), (byte) sw};
    }

    /** The length-prefixed fields of INSTALL's data (§11.5.2.3). */
    private static final class Fields {
        private final byte[] data;
        private int at;

        Fields(byte[] data) {
            this.data = data;
        }

        byte[] next() {
            if (at >= data.length) {
                throw new GpException(Sw.WRONG_DATA, "INSTALL data ends early");
            }
            int length = data[at] & 0xFF;
            if (at + 1 + length > data.length) {
                throw new GpException(Sw.WRONG_DATA, "INSTALL field runs past the end");
            }
            byte[] field = Arrays.copyOfRange(data, at + 1, at + 1 + length);
            at += 1 + length;
            return field;
        }

        /** A trailing field some clients leave out entirely instead of sending its zero length. */
        byte[] optional() {
            return at == data.length ? new byte[0] : next();
        }

        void end() {
            if (at != data.length) {
                throw new GpException(Sw.WRONG_DATA, "trailing bytes in INSTALL data");
            }
        }
    }
}
