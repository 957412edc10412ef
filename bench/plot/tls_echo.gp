# tls_echo: req/s of the TLS echo servers, grouped by worker count (cores), beside weft without TLS
# (the reference); the label over weft's TLS bar is its ratio to weft without TLS at that count.
# gnuplot -e "datafile='...'; outfile='...'; term='pngcairo|png|svg'; n=NCOLS; subtitle='...'; title_machine='...'
#             [; tls_colors='#rrggbb ...']" tls_echo.gp
# datafile: header row `workers "col 1" ... "col n" ratio`, then `"1 worker" v1 ... vn r` (NaN: not
# measured); column 2 is weft without TLS, column 3 weft with TLS, the last column weft TLS / weft plain.
# tls_colors: one colour per data column, in order (bench/report.py gives each server the colour it has in
# the other plots); default: weft plain, weft, Go, Tokio, uvloop, asyncio.
if (term eq 'svg') {
    set terminal svg size 900, 520 dynamic font 'sans,11' background rgb 'white'
} else {
    eval sprintf("set terminal %s size 900, 520 font 'sans,10'", term)
}
set output outfile
set title sprintf("TLS echo (%s), req/s, higher is better\n%s", subtitle, title_machine) noenhanced
gap = 1.5
set style data histograms
set style histogram clustered gap 1.5   # = gap
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.9
set yrange [0:*]
set format y '%.0s%c'
set grid ytics lc rgb '#dddddd'
set ylabel 'round trips / s'
set key outside below horizontal noenhanced
set xtics noenhanced
set key autotitle columnhead   # every plot skips the header row (keeps $0 the row index)
if (!exists("tls_colors")) tls_colors = '#aec7e8 #1f77b4 #2ca02c #d62728 #bcbd22 #8c8c8c'
plot for [i=2:n+1] datafile using i:xtic(1) title columnhead(i) lc rgb word(tls_colors, (i-2)%words(tls_colors)+1), \
     datafile using ($0 + (1 - (n - 1) / 2.0) / (n + gap)):3:(sprintf("%.2fx", column(n+2))) \
         with labels offset 0, 0.8 font ',9' notitle
