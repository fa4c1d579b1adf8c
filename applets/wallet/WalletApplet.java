package cardsuite.wallet;

import cardsuite.isofs.ISOFile;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;
import javacard.security.ECPrivateKey;
import javacard.security.ECPublicKey;
import javacard.security.KeyBuilder;
import javacard.security.KeyPair;
import javacard.security.Signature;

/**
 * The wallet: a prepaid balance the issuer credits over its secure channel ([P000]) and the
 * holder spends with signed payments ([P001]), guarded by a PIN with step-up for large amounts
 * ([P002]). docs/wallet-apdu.md is the APDU reference.
 *
 * Life cycle: INSTALLED → PERSONALISED (PERSONALISE, once) → ACTIVE (SET STATUS) ⇄ BLOCKED, and
 * TERMINATED from any of them. Each instruction's class, states and PIN requirement are one row of
 * POLICY.
 *
 * Every update of several persistent values runs in one transaction; PIN try counters are the
 * deliberate exception (PinCode). All objects are allocated in the constructor (install time):
 * allocation at run time could fail halfway through a command and would leak on a card without
 * garbage collection.
 */
public final class WalletApplet extends Applet implements WalletConstants, EcashConstants {
    // RAM flags, cleared on deselect and power loss
    private static final short RAM_PIN_VERIFIED = (short) 0;
    /** Set by a successful VERIFY, cleared at the start of the next command: step-up needs it. */
    private static final short RAM_PIN_FRESH = (short) 1;

    // work array layout (RAM)
    private static final short WORK_SIGMA = (short) 0;
    private static final short SIGMA_MAX = (short) (TIMESTAMP + 1 + HOLDER_MAX + 1 + ITEM_MAX + IIN + AMOUNT
            + MERCHANT_ID + COUNTER);
    private static final short WORK_BALANCE = SIGMA_MAX;
    private static final short WORK_COUNTER = (short) (WORK_BALANCE + AMOUNT);
    private static final short WORK_RECORD = (short) (WORK_COUNTER + COUNTER);
    private static final short WORK_SIZE = (short) (WORK_RECORD + LOG_RECORD);

    /*
     * Command policy, one row per instruction: INS, the class it takes, the life cycle states it runs
     * in (a mask of STATE_* bits; others get 6985) and whether it needs the PIN verified since
     * selection (6982 otherwise). process() consults it once, before dispatch, in this order: class,
     * state, PIN; a command's own checks (P1-P2, length, data) come after. Rows of bytes in one
     * static array: the converter stores a constant primitive array in the package's static field
     * image, so nothing is allocated at run time (no enums or object arrays in Java Card 3.0.5).
     */
    private static final short POLICY_CLA = (short) 1;
    private static final short POLICY_STATES = (short) 2;
    private static final short POLICY_FLAGS = (short) 3;
    private static final short POLICY_ROW = (short) 4;
    private static final byte NEEDS_PIN = (byte) 0x01;
    private static final byte[] POLICY = {
        // INS                      class            states                              flags
        INS_GET_STATUS,             CLA_PROPRIETARY, STATES_ALL,                         0,
        INS_INITIALIZE_UPDATE,      CLA_PROPRIETARY, STATES_LIVE,                        0,
        INS_EXTERNAL_AUTHENTICATE,  CLA_PROPRIETARY, STATES_LIVE,                        0,
        INS_PERSONALISE,            CLA_SECURE,      STATE_INSTALLED,                    0,
        INS_SET_LIMITS,             CLA_SECURE,      STATES_HOLDER,                      0,
        INS_CREDIT,                 CLA_SECURE,      STATE_ACTIVE,                       0,
        INS_SET_STATUS,             CLA_SECURE,      STATES_LIVE,                        0, // transition: setStatus
        INS_GET_PUBLIC_KEY,         CLA_PROPRIETARY, STATES_HOLDER | STATE_BLOCKED,      0,
        INS_VERIFY,                 CLA_ISO,         STATES_HOLDER,                      0,
        INS_CHANGE_REFERENCE_DATA,  CLA_ISO,         STATES_HOLDER,                      0, // checks the old PIN itself
        INS_RESET_RETRY_COUNTER,    CLA_ISO,         STATES_HOLDER,                      0, // checks the PUK itself
        INS_GET_BALANCE,            CLA_PROPRIETARY, STATES_HOLDER,                      NEEDS_PIN,
        INS_PAY,                    CLA_PROPRIETARY, STATE_ACTIVE,                       NEEDS_PIN, // + step-up
        INS_READ_RECORD,            CLA_ISO,         STATES_HOLDER,                      NEEDS_PIN,
        INS_ECASH_PERSONALISE,      CLA_SECURE,      STATES_HOLDER,                      0,
        INS_ECASH_GET_KEY,          CLA_PROPRIETARY, STATES_HOLDER,                      0,
        INS_ECASH_LOAD_RANGE,       CLA_PROPRIETARY, STATE_ACTIVE,                       0,
        INS_ECASH_PAY,              CLA_PROPRIETARY, STATE_ACTIVE,                       NEEDS_PIN,
        INS_ECASH_LAST_TOKEN,       CLA_PROPRIETARY, STATES_HOLDER,                      NEEDS_PIN,
        INS_ECASH_STATUS,           CLA_PROPRIETARY, STATES_HOLDER,                      NEEDS_PIN,
    };

    private byte state;
    private final byte[] balance;
    private final byte[] counter;
    private final byte[] limits;
    private final byte[] iin;
    private final byte[] hRCard;
    /** Holder info: length ‖ bytes. */
    private final byte[] holder;
    private final PinCode pin;
    private final PinCode puk;
    private final IssuerChannel channel;
    private final WalletLog log;
    /** Divisible prepaid e-cash ([P004]), its own class: EcashPurse. */
    private final EcashPurse purse;
    private final KeyPair cardKeys;
    private final ECPrivateKey skc;
    private final ECPublicKey pkc;
    private final Signature signer;
    private final byte[] ram;
    private final byte[] work;

    private WalletApplet(byte[] keys, short keysOff) {
        balance = new byte[AMOUNT];
        counter = new byte[COUNTER];
        limits = new byte[LIMITS];
        iin = new byte[IIN];
        hRCard = new byte[HASH];
        holder = new byte[(short) (1 + HOLDER_MAX)];
        pin = new PinCode(PIN_TRIES);
        puk = new PinCode(PUK_TRIES);
        channel = new IssuerChannel(keys, keysOff);
        log = new WalletLog();
        purse = new EcashPurse();
        skc = (ECPrivateKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PRIVATE, KeyBuilder.LENGTH_EC_FP_256, false);
        pkc = (ECPublicKey) KeyBuilder.buildKey(KeyBuilder.TYPE_EC_FP_PUBLIC, KeyBuilder.LENGTH_EC_FP_256, false);
        P256.setCurve(skc);
        P256.setCurve(pkc);
        cardKeys = new KeyPair(pkc, skc);
        signer = Signature.getInstance(Signature.ALG_ECDSA_SHA_256, false);
        ram = JCSystem.makeTransientByteArray((short) 2, JCSystem.CLEAR_ON_DESELECT);
        work = JCSystem.makeTransientByteArray(WORK_SIZE, JCSystem.CLEAR_ON_DESELECT);
        state = STATE_INSTALLED;
    }

    /**
     * Install parameters (the third LV of bArray): the transport key set K_E ‖ K_A, 32 bytes, which
     * opens the issuer session that personalises the card. Without them the card could never be
     * personalised, so installation fails (6A80).
     */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        short off = (short) (bOffset + 1 + bArray[bOffset]); // skip the instance AID
        off = (short) (off + 1 + bArray[off]); // skip the control info
        if (bArray[off] != (byte) (2 * DES_KEY)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        new WalletApplet(bArray, (short) (off + 1)).register(bArray, (short) (bOffset + 1), bArray[bOffset]);
    }

    public void process(APDU apdu) {
        // Step-up ([P002]): a fresh verification counts for the very next command only.
        boolean fresh = ram[RAM_PIN_FRESH] != 0;
        ram[RAM_PIN_FRESH] = 0;
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        byte cla = buf[ISO7816.OFFSET_CLA];
        byte ins = buf[ISO7816.OFFSET_INS];
        if (cla != CLA_ISO && cla != CLA_PROPRIETARY && cla != CLA_SECURE) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        short plain = 0;
        if (cla == CLA_SECURE) {
            // Before anything else, so card and host counters advance together for every wrapped command.
            plain = channel.unwrap(apdu);
        }
        short row = policyRow(ins);
        byte required = POLICY[(short) (row + POLICY_CLA)];
        if (cla != required) {
            ISOException.throwIt(required == CLA_SECURE && cla == CLA_PROPRIETARY
                    ? ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED : ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        if ((byte) (POLICY[(short) (row + POLICY_STATES)] & state) == 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        if ((byte) (POLICY[(short) (row + POLICY_FLAGS)] & NEEDS_PIN) != 0 && ram[RAM_PIN_VERIFIED] == 0) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        switch (ins) {
            case INS_GET_STATUS:
                getStatus(apdu);
                return;
            case INS_INITIALIZE_UPDATE:
                channel.initializeUpdate(apdu);
                return;
            case INS_EXTERNAL_AUTHENTICATE:
                channel.externalAuthenticate(apdu);
                return;
            case INS_PERSONALISE:
                personalise(apdu, plain);
                return;
            case INS_SET_LIMITS:
                setLimits(apdu, plain);
                return;
            case INS_CREDIT:
                credit(apdu, plain);
                return;
            case INS_SET_STATUS:
                setStatus(apdu, plain);
                return;
            case INS_GET_PUBLIC_KEY:
                getPublicKey(apdu);
                return;
            case INS_VERIFY:
                verify(apdu);
                return;
            case INS_CHANGE_REFERENCE_DATA:
                changeReferenceData(apdu);
                return;
            case INS_RESET_RETRY_COUNTER:
                resetRetryCounter(apdu);
                return;
            case INS_GET_BALANCE:
                getBalance(apdu);
                return;
            case INS_PAY:
                pay(apdu, fresh);
                return;
            case INS_READ_RECORD:
                readRecord(apdu);
                return;
            case INS_ECASH_PERSONALISE:
                purse.personalise(apdu, plain);
                return;
            case INS_ECASH_GET_KEY:
                purse.getKey(apdu);
                return;
            case INS_ECASH_LOAD_RANGE:
                purse.loadRange(apdu);
                return;
            case INS_ECASH_PAY:
                purse.pay(apdu);
                return;
            case INS_ECASH_LAST_TOKEN:
                purse.lastToken(apdu);
                return;
            case INS_ECASH_STATUS:
                purse.status(apdu);
                return;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    /** The row of POLICY for an instruction; 6D00 for an unknown one. */
    private static short policyRow(byte ins) {
        for (short row = 0; row < (short) POLICY.length; row += POLICY_ROW) {
            if (POLICY[row] == ins) {
                return row;
            }
        }
        ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        return 0;
    }

    // ------------------------------------------------------------------ helpers

    /** Receives the data field and checks it has exactly `expected` bytes (6700 otherwise). */
    static void receive(APDU apdu, short expected) {
        if (receiveAny(apdu) != expected) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }

    /** Receives the whole data field (short APDUs fit the buffer) and returns its length. */
    static short receiveAny(APDU apdu) {
        short len = apdu.setIncomingAndReceive();
        if (len != apdu.getIncomingLength()) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        return len;
    }

    private static void requireP1P2(byte[] buf, byte p1, byte p2) {
        if (buf[ISO7816.OFFSET_P1] != p1 || buf[ISO7816.OFFSET_P2] != p2) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
    }

    /** 6A80 unless step-up ≤ max per payment ≤ max balance. */
    private static void checkLimits(byte[] src, short off) {
        if (Amount.compare(src, (short) (off + LIMIT_MAX_PAYMENT), src, (short) (off + LIMIT_MAX_BALANCE)) > 0
                || Amount.compare(src, (short) (off + LIMIT_STEP_UP), src, (short) (off + LIMIT_MAX_PAYMENT)) > 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
    }

    /** Builds the log record in work and the new counter in work (the caller has checked it does not wrap). */
    private void prepareRecord(byte type, byte[] src, short amountOff, short tsOff, short refOff) {
        Amount.increment(counter, (short) 0, work, WORK_COUNTER);
        Util.arrayCopyNonAtomic(work, WORK_COUNTER, work, (short) (WORK_RECORD + LOG_COUNTER), COUNTER);
        work[(short) (WORK_RECORD + LOG_TYPE)] = type;
        Util.arrayCopyNonAtomic(src, amountOff, work, (short) (WORK_RECORD + LOG_AMOUNT), AMOUNT);
        Util.arrayCopyNonAtomic(work, WORK_BALANCE, work, (short) (WORK_RECORD + LOG_BALANCE), AMOUNT);
        Util.arrayCopyNonAtomic(src, tsOff, work, (short) (WORK_RECORD + LOG_TS), TIMESTAMP);
        Util.arrayCopyNonAtomic(src, refOff, work, (short) (WORK_RECORD + LOG_MERCHANT), MERCHANT_ID);
    }

    /** Balance, counter and log record from work, all or nothing. */
    private void commitEntry() {
        JCSystem.beginTransaction();
        Util.arrayCopy(work, WORK_BALANCE, balance, (short) 0, AMOUNT);
        Util.arrayCopy(work, WORK_COUNTER, counter, (short) 0, COUNTER);
        log.append(work, WORK_RECORD);
        JCSystem.commitTransaction();
    }

    private void requireCounterLeft() {
        if (Amount.increment(counter, (short) 0, work, WORK_COUNTER)) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
    }

    // ------------------------------------------------------------------ commands

    /** GET STATUS: state ‖ key version ‖ PIN tries ‖ PUK tries ‖ transaction counter (4). */
    private void getStatus(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        receive(apdu, (short) 0);
        buf[0] = state;
        buf[1] = channel.keyVersion();
        buf[2] = pin.triesLeft();
        buf[3] = puk.triesLeft();
        Util.arrayCopyNonAtomic(counter, (short) 0, buf, (short) 4, COUNTER);
        apdu.setOutgoingAndSend((short) 0, STATUS_LENGTH);
    }

    /**
     * PERSONALISE (issuer session): IIN ‖ H(R-Card) ‖ limits ‖ PIN block ‖ PUK block ‖ K_E ‖ K_A ‖
     * Lh ‖ holder info. Generates the card's key pair, then commits everything with the switch to the
     * issuer keys in one transaction. Power lost before the commit leaves an INSTALLED card with its
     * transport keys, ready for another try.
     */
    private void personalise(APDU apdu, short len) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        if (len <= PERSO_HOLDER || len > (short) (PERSO_HOLDER + HOLDER_MAX)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short data = ISO7816.OFFSET_CDATA;
        short holderLen = (short) (buf[(short) (data + PERSO_HOLDER_LEN)] & 0xFF);
        if ((short) (PERSO_HOLDER + holderLen) != len
                || !PinCode.isWellFormed(buf, (short) (data + PERSO_PIN), PIN_MIN_DIGITS)
                || !PinCode.isWellFormed(buf, (short) (data + PERSO_PUK), (byte) PIN_BLOCK)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        checkLimits(buf, (short) (data + PERSO_LIMITS));

        cardKeys.genKeyPair(); // SKC is born here and never leaves the card
        channel.loadIssuerKeys(buf, (short) (data + PERSO_KEY_ENC), (short) (data + PERSO_KEY_MAC));
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, (short) (data + PERSO_IIN), iin, (short) 0, IIN);
        Util.arrayCopy(buf, (short) (data + PERSO_HRCARD), hRCard, (short) 0, HASH);
        Util.arrayCopy(buf, (short) (data + PERSO_LIMITS), limits, (short) 0, LIMITS);
        Util.arrayCopy(buf, (short) (data + PERSO_HOLDER_LEN), holder, (short) 0, (short) (1 + holderLen));
        pin.update(buf, (short) (data + PERSO_PIN));
        puk.update(buf, (short) (data + PERSO_PUK));
        channel.switchToIssuerKeys();
        state = STATE_PERSONALISED;
        JCSystem.commitTransaction();
        // The plaintext keys and PINs must not linger in the APDU buffer.
        Util.arrayFillNonAtomic(buf, data, len, (byte) 0);
        channel.retireTransportKeys();
    }

    /** SET LIMITS (issuer session): max balance ‖ max per payment ‖ step-up threshold. */
    private void setLimits(APDU apdu, short len) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        if (len != LIMITS) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        checkLimits(buf, ISO7816.OFFSET_CDATA);
        Util.arrayCopy(buf, ISO7816.OFFSET_CDATA, limits, (short) 0, LIMITS); // one atomic copy
    }

    /** CREDIT (issuer session): amount ‖ timestamp ‖ reference; never above the maximum balance. */
    private void credit(APDU apdu, short len) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        if (len != CREDIT_DATA) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short data = ISO7816.OFFSET_CDATA;
        if (Amount.isZero(buf, data)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (Amount.add(balance, (short) 0, buf, data, work, WORK_BALANCE)
                || Amount.compare(work, WORK_BALANCE, limits, LIMIT_MAX_BALANCE) > 0) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        requireCounterLeft();
        prepareRecord(LOG_TYPE_CREDIT, buf, data, (short) (data + AMOUNT), (short) (data + AMOUNT + TIMESTAMP));
        commitEntry();
    }

    /**
     * SET STATUS (issuer session), P1 the new state: ACTIVE from PERSONALISED or BLOCKED, BLOCKED from
     * ACTIVE, TERMINATED from any state. Terminating erases SKC and closes the session for good.
     */
    private void setStatus(APDU apdu, short len) {
        byte[] buf = apdu.getBuffer();
        byte target = buf[ISO7816.OFFSET_P1];
        if (buf[ISO7816.OFFSET_P2] != 0
                || (target != STATE_ACTIVE && target != STATE_BLOCKED && target != STATE_TERMINATED)) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (len != 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        boolean allowed = target == STATE_TERMINATED
                || (target == STATE_ACTIVE && (state == STATE_PERSONALISED || state == STATE_BLOCKED))
                || (target == STATE_BLOCKED && state == STATE_ACTIVE);
        if (!allowed) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        state = target; // a single field write is atomic
        if (target == STATE_TERMINATED) {
            skc.clearKey();
            purse.terminate();
            channel.close();
        }
    }

    /** GET PUBLIC KEY: PKC as an uncompressed P-256 point (65 bytes). */
    private void getPublicKey(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        receive(apdu, (short) 0);
        apdu.setOutgoingAndSend((short) 0, pkc.getW(buf, (short) 0));
    }

    /**
     * VERIFY (ISO 7816-4 11.5.6), P2 = 81: data the PIN block. Without data it only reports: 9000 when
     * verified, else 63Cx.
     */
    private void verify(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, PIN_REFERENCE);
        short len = receiveAny(apdu);
        if (len == 0) {
            if (ram[RAM_PIN_VERIFIED] == 0) {
                pin.throwStatus();
            }
            return;
        }
        if (len != PIN_BLOCK) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        ram[RAM_PIN_VERIFIED] = 0;
        if (!pin.check(buf, ISO7816.OFFSET_CDATA)) {
            pin.throwFailed();
        }
        ram[RAM_PIN_VERIFIED] = 1;
        ram[RAM_PIN_FRESH] = 1;
    }

    /** CHANGE REFERENCE DATA (ISO 7816-4 11.5.7), P1 = 00, P2 = 81: old PIN block ‖ new PIN block. */
    private void changeReferenceData(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, PIN_REFERENCE);
        receive(apdu, (short) (2 * PIN_BLOCK));
        short newPin = (short) (ISO7816.OFFSET_CDATA + PIN_BLOCK);
        if (!PinCode.isWellFormed(buf, newPin, PIN_MIN_DIGITS)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA); // checked first: a typo costs no try
        }
        ram[RAM_PIN_VERIFIED] = 0;
        if (!pin.check(buf, ISO7816.OFFSET_CDATA)) {
            pin.throwFailed();
        }
        JCSystem.beginTransaction();
        pin.update(buf, newPin);
        JCSystem.commitTransaction();
        ram[RAM_PIN_VERIFIED] = 1;
    }

    /**
     * RESET RETRY COUNTER (ISO 7816-4 11.5.10), P2 = 81. P1 = 00: PUK block ‖ new PIN block; P1 = 01:
     * PUK block, the PIN keeps its value. A wrong PUK answers 63Cx with the PUK's tries left.
     */
    private void resetRetryCounter(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        if ((p1 != RRC_P1_NEW_PIN && p1 != RRC_P1_RESET_ONLY) || buf[ISO7816.OFFSET_P2] != PIN_REFERENCE) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        boolean newValue = p1 == RRC_P1_NEW_PIN;
        receive(apdu, newValue ? (short) (2 * PIN_BLOCK) : PIN_BLOCK);
        short newPin = (short) (ISO7816.OFFSET_CDATA + PIN_BLOCK);
        if (newValue && !PinCode.isWellFormed(buf, newPin, PIN_MIN_DIGITS)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        ram[RAM_PIN_VERIFIED] = 0;
        if (!puk.check(buf, ISO7816.OFFSET_CDATA)) {
            puk.throwFailed();
        }
        JCSystem.beginTransaction();
        if (newValue) {
            pin.update(buf, newPin);
        } else {
            pin.resetTries();
        }
        JCSystem.commitTransaction();
    }

    /** GET BALANCE (PIN): the balance, 4 bytes. */
    private void getBalance(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        receive(apdu, (short) 0);
        Util.arrayCopyNonAtomic(balance, (short) 0, buf, (short) 0, AMOUNT);
        apdu.setOutgoingAndSend((short) 0, AMOUNT);
    }

    /**
     * PAY ([P001]): amount ‖ TS_M ‖ merchant ID ‖ Li ‖ item info. Needs the PIN verified in this
     * session, and above the step-up threshold a verification immediately before, spent by this
     * command. Signs σ = TS_M ‖ Lh ‖ holder ‖ Li ‖ item ‖ IIN ‖ amount ‖ merchant ID ‖ counter with SKC,
     * then debits, counts and logs in one transaction. Answers Lσ ‖ σ ‖ Ls ‖ signature ‖ H(R-Card).
     */
    private void pay(APDU apdu, boolean fresh) {
        byte[] buf = apdu.getBuffer();
        requireP1P2(buf, (byte) 0, (byte) 0);
        short len = receiveAny(apdu);
        if (len <= PAY_ITEM || len > (short) (PAY_ITEM + ITEM_MAX)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        short data = ISO7816.OFFSET_CDATA;
        short itemLen = (short) (buf[(short) (data + PAY_ITEM_LEN)] & 0xFF);
        short amount = (short) (data + PAY_AMOUNT);
        if ((short) (PAY_ITEM + itemLen) != len || Amount.isZero(buf, amount)) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (!fresh && Amount.compare(buf, amount, limits, LIMIT_STEP_UP) > 0) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (Amount.compare(buf, amount, limits, LIMIT_MAX_PAYMENT) > 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_DATA);
        }
        if (Amount.subtract(balance, (short) 0, buf, amount, work, WORK_BALANCE)) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        requireCounterLeft();
        prepareRecord(LOG_TYPE_PAYMENT, buf, amount, (short) (data + PAY_TS), (short) (data + PAY_MERCHANT));

        // σ in work: TS_M ‖ Lh ‖ holder ‖ Li ‖ item ‖ IIN ‖ amount ‖ merchant ID ‖ counter
        short s = Util.arrayCopyNonAtomic(buf, (short) (data + PAY_TS), work, WORK_SIGMA, TIMESTAMP);
        s = Util.arrayCopyNonAtomic(holder, (short) 0, work, s, (short) (1 + holder[0]));
        s = Util.arrayCopyNonAtomic(buf, (short) (data + PAY_ITEM_LEN), work, s, (short) (1 + itemLen));
        s = Util.arrayCopyNonAtomic(iin, (short) 0, work, s, IIN);
        s = Util.arrayCopyNonAtomic(buf, amount, work, s, AMOUNT);
        s = Util.arrayCopyNonAtomic(buf, (short) (data + PAY_MERCHANT), work, s, MERCHANT_ID);
        s = Util.arrayCopyNonAtomic(work, WORK_COUNTER, work, s, COUNTER);
        short sigmaLen = (short) (s - WORK_SIGMA);

        // response: Lσ ‖ σ ‖ Ls ‖ signature ‖ H(R-Card); the command data is no longer needed
        buf[0] = (byte) sigmaLen;
        short r = Util.arrayCopyNonAtomic(work, WORK_SIGMA, buf, (short) 1, sigmaLen);
        signer.init(skc, Signature.MODE_SIGN);
        short sigLen = signer.sign(work, WORK_SIGMA, sigmaLen, buf, (short) (r + 1));
        buf[r] = (byte) sigLen;
        r = Util.arrayCopyNonAtomic(hRCard, (short) 0, buf, (short) (r + 1 + sigLen), HASH);

        commitEntry();
        apdu.setOutgoingAndSend((short) 0, r);
    }

    /** READ RECORD (ISO 7816-4 11.3.3) of the log, P1 record number (1 = newest), P2 = 04 or SFI 1 (0C). */
    private void readRecord(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte p2 = buf[ISO7816.OFFSET_P2];
        if ((byte) (p2 & RECORD_P2_MODE) != RECORD_NUMBER) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        byte sfi = (byte) ((p2 >> RECORD_P2_SFI_SHIFT) & SFI_MASK);
        if (sfi != 0 && sfi != LOG_SFI) {
            ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
        }
        receive(apdu, (short) 0);
        ISOFile.sendExact(apdu, log.read(buf[ISO7816.OFFSET_P1], buf, (short) 0));
    }
}
