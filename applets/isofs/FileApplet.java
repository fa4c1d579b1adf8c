package cardsuite.isofs;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;

/**
 * An applet that offers one EF through the paper's three commands (its Table 3), so that an applet
 * built on the library keeps only what is its own: its install method and a constructor naming its
 * file ({@code super(FID, ISOFS.FDB_CYCLIC, RECORD_SIZE, RECORDS)}).
 *
 * Checked in this order:
 *   SELECT by the applet's AID                            9000, no data
 *   CLA not 00                                            6E00
 *   INS not 23 write / 24 read (/ 25 append: record files)  6D00
 *   P2 not 00; transparent file: P1 not 00                6A86
 *   record file, INS 23 / 24: P1 not a record present     6A83
 *   INS 25: linear fixed file full                        6A84
 *   INS 23 / 25: Lc not the file's (record) size, or no command data   6700
 *   INS 24: Le not that size (Le absent, and Le 00 = 256, included)    6Cxx; command data ignored
 * Write replaces the whole transparent file or record P1; append is the file's appendRecord (cyclic:
 * a new record 1). Each write and append is one transaction.
 */
public abstract class FileApplet extends Applet {
    public static final byte INS_WRITE = (byte) 0x23;
    public static final byte INS_READ = (byte) 0x24;
    public static final byte INS_APPEND = (byte) 0x25;

    /** The file when it is transparent, else null. */
    private TransparentFile binary;
    /** The file when it holds records, else null. */
    private RecordFile records;

    /**
     * An applet offering a new EF with file identifier fid (no SFI): descriptor ISOFS.FDB_TRANSPARENT
     * for size bytes (count is not used), ISOFS.FDB_CYCLIC or any other for linear fixed, with count
     * records of size bytes. The file must fit the APDU buffer. Creating the file here, rather than
     * taking one, keeps every reference to the file classes out of the applet's package. Registers
     * the applet.
     */
    protected FileApplet(short fid, byte descriptor, short size, byte count) {
        if (descriptor == ISOFS.FDB_TRANSPARENT) {
            binary = new TransparentFile(fid, (byte) 0, size);
        } else if (descriptor == ISOFS.FDB_CYCLIC) {
            records = new CyclicRecordFile(fid, (byte) 0, size, count);
        } else {
            records = new RecordFile(fid, (byte) 0, size, count);
        }
        register();
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_CLA] != 0) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        byte ins = buf[ISO7816.OFFSET_INS];
        byte p1 = buf[ISO7816.OFFSET_P1];
        RecordFile r = records;
        if (ins < INS_WRITE || ins > (r == null ? INS_READ : INS_APPEND)) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        if (buf[ISO7816.OFFSET_P2] != 0 || (r == null && p1 != 0)) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (ins == INS_READ) {
            ISOFile.sendExact(apdu, r == null ? binary.readBinary((short) 0, buf, (short) 0, binary.getSize())
                    : r.readRecord(p1, buf, (short) 0));
            return;
        }
        short len = apdu.setIncomingAndReceive();
        if (r == null) {
            if (len != binary.getSize()) {
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
            }
            binary.store((short) 0, buf, ISO7816.OFFSET_CDATA, len);
        } else if (ins == INS_WRITE) {
            r.updateRecord(p1, buf, ISO7816.OFFSET_CDATA, len);
        } else {
            r.appendRecord(buf, ISO7816.OFFSET_CDATA, len);
        }
    }
}
